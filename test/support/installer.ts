import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { imagesDir } from '../../server/images/catalog.js';
import { buildInstaller, type InstallerBuild } from '../../server/images/installer-build.js';
import { makeTorrent } from '../../server/images/torrent.js';
import { IMAGE_FILES, type ImageManifest } from '../../server/model/image.js';
import { cacheRoot } from './cache.js';
import { readNewc } from './initramfs.js';

/**
 * The real installer for tests: built once by the same code as `rackseed installer build` into the test cache
 * (its build.json makes later runs a no-op), copied into a server's data directory where the provision script
 * expects it. Plus a tiny root file system image for installs that need no real OS.
 */

let building: Promise<InstallerBuild> | undefined;

export function ensureInstaller(): Promise<InstallerBuild> {
  building ??= buildInstaller({ outDir: path.join(cacheRoot(), 'installer') });
  return building;
}

/** Copies the installer to <dataDir>/files/installer/ (the default provisioning.kernel/initrd). */
export function installInstallerInto(dataDir: string, build: InstallerBuild): void {
  const dir = path.join(dataDir, 'files', 'installer');
  mkdirSync(dir, { recursive: true });
  copyFileSync(build.kernel, path.join(dir, 'vmlinuz'));
  copyFileSync(build.initrd, path.join(dir, 'initrd.img'));
}

/** Names and modes of everything in the installer initramfs. */
export function initramfsEntries(initrd: string): Array<{ name: string; mode: number; size: number }> {
  return readNewc(gunzipSync(readFileSync(initrd))).map((e) => ({ name: e.name, mode: e.mode, size: e.data.length }));
}

export interface TinyImage {
  name: string;
  sha256: string;
  size: number;
}

/**
 * A small root file system image laid out as server/model/image.ts says: an /etc with hosts and an old host key the
 * installer must replace, a file with an extended attribute (the tar flags must keep it), and a torrent whose web
 * seed is the server's /files route. `corruptManifest` records a wrong sha256, for the verify-fails path.
 */
export async function writeTinyImage(dataDir: string, publicUrl: string, name: string, opts: { corruptManifest?: boolean } = {}): Promise<TinyImage> {
  const work = mkdtempSync(path.join(tmpdir(), 'rackseed-tiny-'));
  try {
    const root = path.join(work, 'root');
    const files: Record<string, string> = {
      'etc/hosts': '127.0.0.1 localhost\n127.0.1.1 imagehost\n',
      'etc/hostname': 'imagehost\n',
      'etc/machine-id': '0123456789abcdef0123456789abcdef\n',
      'etc/ssh/ssh_host_rsa_key': 'shared by every node built from this image\n',
      'etc/ssh/sshd_config.d/.keep': '',
      'etc/os-release': 'PRETTY_NAME="rackseed tiny test image"\n',
      'usr/lib/systemd/system/systemd-networkd.service': '[Unit]\nDescription=placeholder\n',
      'root/.keep': '',
      'opt/payload.bin': createHash('sha256').update(name).digest('hex').repeat(4096),
    };
    for (const [rel, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      writeFileSync(path.join(root, rel), text);
    }
    execFileSync('ln', ['-s', 'usr/lib', path.join(root, 'lib')]);
    execFileSync('setfattr', ['-n', 'user.rackseed', '-v', 'kept', path.join(root, 'opt/payload.bin')], { stdio: 'ignore' });
    const dir = path.join(imagesDir(dataDir), name);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, IMAGE_FILES.rootfs);
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner', '--zstd', '-cpf', file, '-C', root, '.']);
    const bytes = readFileSync(file);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const size = statSync(file).size;
    const fileUrl = `${publicUrl}/files/images/${name}/${IMAGE_FILES.rootfs}`;
    const t = await makeTorrent({ file, announce: [`${publicUrl}/announce`], webSeeds: [fileUrl] }, size);
    writeFileSync(path.join(dir, IMAGE_FILES.torrent), t.bytes);
    // A kernel and initrd beside it, as an image for installed_boot: kernel must have (the plan is refused
    // otherwise). The installer tests never boot the installed disk, so these stand in for them.
    const boot = Object.fromEntries(
      (['kernel', 'initrd'] as const).map((kind) => {
        const text = `placeholder ${kind} of the tiny test image ${name}\n`;
        writeFileSync(path.join(dir, IMAGE_FILES[kind]), text);
        return [kind, { file: IMAGE_FILES[kind], sha256: createHash('sha256').update(text).digest('hex'), size: Buffer.byteLength(text) }];
      }),
    ) as Pick<ImageManifest['artefacts'], 'kernel' | 'initrd'>;
    const manifest: ImageManifest = {
      version: 1,
      name,
      createdAt: new Date().toISOString(),
      source: { kind: 'import', from: 'test: tiny root file system' },
      artefacts: { rootfs: { file: IMAGE_FILES.rootfs, sha256: opts.corruptManifest ? 'f'.repeat(64) : sha256, size }, ...boot },
      torrent: { file: IMAGE_FILES.torrent, infoHash: t.infoHash, pieceLength: t.pieceLength },
    };
    writeFileSync(path.join(dir, IMAGE_FILES.manifest), JSON.stringify(manifest, null, 2));
    return { name, sha256, size };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Runs one debugfs request (`cat /etc/hostname`, `ea_list /opt/x`, `stat /x`) on an ext4 partition of a raw disk image: no loop device, no mount. */
export function debugfsOnDisk(disk: string, partition: number, request: string): string {
  const table = JSON.parse(execFileSync('sfdisk', ['-J', disk], { encoding: 'utf8' })) as { partitiontable: { sectorsize?: number; partitions: Array<{ start: number; size: number }> } };
  const part = table.partitiontable.partitions[partition - 1];
  if (!part) throw new Error(`${disk} has no partition ${partition}`);
  const sector = table.partitiontable.sectorsize ?? 512;
  const work = mkdtempSync(path.join(tmpdir(), 'rackseed-disk-'));
  try {
    const img = path.join(work, 'part.img');
    execFileSync('dd', [`if=${disk}`, `of=${img}`, `bs=${sector}`, `skip=${part.start}`, `count=${part.size}`, 'status=none']);
    return execFileSync('debugfs', ['-R', request, img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Stand-in installer files where `rackseed installer build` puts them (<data_dir>/files/installer/): for tests that
 * check the provisioning script a node is handed, not what boots from it (the server hands that script out only
 * when the installer is there).
 */
export function writeStandInInstaller(dataDir: string): void {
  const dir = path.join(dataDir, 'files', 'installer');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'vmlinuz'), 'stand-in kernel (tests only)\n');
  writeFileSync(path.join(dir, 'initrd.img'), 'stand-in initrd (tests only)\n');
}

/**
 * What a test server needs before it sends a node to the installer: an image named `debian12` in its catalog (the
 * boot decision provisions only into an image it holds) and the stand-in installer files.
 */
export async function readyToProvision(server: { config: { dataDir: string }; images: { rescan(): unknown } }): Promise<void> {
  await writeTinyImage(server.config.dataDir, 'http://10.0.0.1:8080', 'debian12');
  server.images.rescan();
  writeStandInInstaller(server.config.dataDir);
}
