import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../server/cli/program.js';
import { buildImage } from '../../server/images/build.js';
import { imagesDir } from '../../server/images/catalog.js';
import { importImage } from '../../server/images/import.js';
import { parseManifest } from '../../server/images/manifest.js';
import type { ImageStage } from '../../server/images/progress.js';
import { loadRecipe } from '../../server/images/recipe.js';
import { mountsBelow, unmountBelow } from '../../server/util/mounts.js';
import { readTorrent } from '../../server/images/torrent.js';
import type { ImageManifest } from '../../server/model/image.js';
import { copyCachedBootstrap, ensureBootableTestImage, installImageInto, PLACEHOLDER_PUBLIC_URL } from '../support/debian-image.js';
import { requireBinary } from '../support/process-output.js';
import { SqliteStore } from '../../server/store/index.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { waitFor } from '../support/wait.js';
import { unusedLoopbackPort } from '../support/ports.js';

// A small image that still proves the format: minbase, the tools to set an xattr and an ACL, and a hook using them.
const RECIPE = `release: bookworm
variant: minbase
packages: [acl, attr]
files:
  - path: /etc/rackseed-xattr
    content: "xattr\\n"
  - path: /etc/rackseed-acl
    content: "acl\\n"
    mode: "0640"
hook: |
  setfattr -n user.rackseed -v yes /etc/rackseed-xattr
  setfacl -m u:1234:r /etc/rackseed-acl
  echo built-by-hook > /etc/rackseed-hook
`;
const PUBLIC_URL = 'http://10.9.8.7:8080';
const MINUTES = 60_000;
const ROOT = path.resolve(import.meta.dirname, '../..');

let dir: string;
let dataDir: string;
let configFile: string;
let recipeFile: string;
let built: ImageManifest;
let extracted: string;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
}


function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Runs the CLI in-process with the test's config; returns what it printed. */
async function cli(...args: string[]): Promise<string> {
  let out = '';
  await buildProgram((s) => (out += s)).parseAsync(['node', 'rackseed', '--config', configFile, ...args]);
  return out;
}

function expectMatchesFiles(m: ImageManifest, imageDir: string): void {
  for (const a of Object.values(m.artefacts)) {
    const file = path.join(imageDir, a.file);
    expect(readFileSync(file).length, a.file).toBe(a.size);
    expect(sha256(file), a.file).toBe(a.sha256);
  }
}

beforeAll(() => {
  requireBinary('debootstrap', 'apt-get install -y --no-install-recommends debootstrap zstd acl attr');
  if (process.getuid?.() !== 0) throw new Error('image builds need root (debootstrap, chroot, mount)');
  dir = mkdtempSync(path.join(tmpdir(), 'rackseed-image-'));
  dataDir = path.join(dir, 'data');
  configFile = path.join(dir, 'rackseed.yaml');
  recipeFile = path.join(dir, 'mini.yaml');
  writeFileSync(recipeFile, RECIPE);
  writeFileSync(configFile, `data_dir: ./data\ninventory: ./inventory.yaml\nhttp:\n  public_url: ${PUBLIC_URL}\nlog:\n  level: silent\n`);
  writeFileSync(path.join(dir, 'inventory.yaml'), 'cluster: { name: t }\ngroups:\n  compute: { image: inuse }\n  login: { image: inuse }\nnodes: []\n');
});

afterAll(() => {
  if (dir && mountsBelow(dir).length === 0) rmSync(dir, { recursive: true, force: true });
});

describe('image build (real debootstrap, tree cached by recipe)', () => {
  it('builds, packs, hashes, seeds and publishes an image', { timeout: 20 * MINUTES }, async () => {
    const stages = new Set<ImageStage>();
    const t0 = Date.now();
    built = await buildImage({ name: 'mini', recipe: loadRecipe(recipeFile), dataDir, publicUrl: PUBLIC_URL, bootstrap: copyCachedBootstrap, onProgress: (p) => stages.add(p.stage) });
    console.log(`image build (debootstrap tree from the cache or made now): ${((Date.now() - t0) / 1000).toFixed(1)} s, rootfs ${(built.artefacts.rootfs.size / 1048576).toFixed(1)} MiB`);
    expect([...stages]).toEqual(['debootstrap', 'files', 'hook', 'pack', 'hash', 'torrent', 'publish']);
    const imageDir = path.join(imagesDir(dataDir), 'mini');
    expect(readdirSync(imageDir).sort()).toEqual(['manifest.json', 'rootfs.tar.zst', 'rootfs.tar.zst.torrent']);
    const m = parseManifest(readFileSync(path.join(imageDir, 'manifest.json'), 'utf8'), 'manifest.json');
    expect(m).toEqual(built);
    // The recipe as built, its hook by hash only: the manifest is served to anyone on the boot network.
    const { hook, ...withoutHook } = loadRecipe(recipeFile);
    expect(m.source).toEqual({ kind: 'debootstrap', recipe: { ...withoutHook, hookSha256: createHash('sha256').update(hook!).digest('hex') } });
    expect(readFileSync(path.join(imageDir, 'manifest.json'), 'utf8')).not.toContain('built-by-hook');
    expect(m.artefacts.kernel).toBeUndefined();
    expectMatchesFiles(m, imageDir);
    // Nothing left behind: scratch space empty, nothing mounted.
    expect(readdirSync(path.join(dataDir, '.image-work'))).toEqual([]);
    expect(mountsBelow(dataDir)).toEqual([]);
  });

  it('the torrent describes the tarball: same info-hash, tracker and web seed at the public URL', async () => {
    const t = await readTorrent(readFileSync(path.join(imagesDir(dataDir), 'mini', 'rootfs.tar.zst.torrent')));
    expect(t).toMatchObject({
      infoHash: built.torrent.infoHash,
      pieceLength: built.torrent.pieceLength,
      length: built.artefacts.rootfs.size,
      private: true,
      announce: [`${PUBLIC_URL}/announce`],
      urlList: [`${PUBLIC_URL}/files/images/mini/rootfs.tar.zst`],
    });
  });

  it('the tarball lists with tar --zstd, numeric owners, and keeps xattrs and ACLs', () => {
    const tarball = path.join(imagesDir(dataDir), 'mini', 'rootfs.tar.zst');
    const listing = sh('tar', ['--zstd', '--numeric-owner', '-tvf', tarball]);
    expect(listing).toMatch(/^-rw-r----- 0\/0 +4 .* \.\/etc\/rackseed-acl$/m);
    expect(listing).toMatch(/ \.\/usr\/bin\/setfattr$/m);
    expect(listing).not.toMatch(/ \.\/proc\/.+/m);
    expect(listing).not.toMatch(/\.\/var\/cache\/apt\/archives\/.*\.deb$/m);
    extracted = path.join(dir, 'extracted');
    mkdirSync(extracted);
    sh('tar', ['--xattrs', '--xattrs-include=*', '--acls', '--zstd', '-xf', tarball, '-C', extracted]);
    expect(sh('getfattr', ['--only-values', '-n', 'user.rackseed', path.join(extracted, 'etc/rackseed-xattr')])).toBe('yes');
    expect(sh('getfacl', ['--omit-header', '--numeric', path.join(extracted, 'etc/rackseed-acl')])).toMatch(/^user:1234:r--$/m);
    expect(readFileSync(path.join(extracted, 'etc/rackseed-hook'), 'utf8')).toBe('built-by-hook\n');
  });

  it('refuses to overwrite an image unless forced', async () => {
    await expect(buildImage({ name: 'mini', recipe: loadRecipe(recipeFile), dataDir, publicUrl: PUBLIC_URL, bootstrap: copyCachedBootstrap })).rejects.toMatchObject({ code: 'IMAGE_EXISTS' });
  });

  it('a failing hook leaves no image, no scratch tree and nothing mounted', { timeout: 5 * MINUTES }, async () => {
    const recipe = { ...loadRecipe(recipeFile), hook: 'echo about to fail >&2\nexit 3\n' };
    await expect(buildImage({ name: 'broken', recipe, dataDir, publicUrl: PUBLIC_URL, bootstrap: copyCachedBootstrap })).rejects.toMatchObject({ code: 'IMAGE_BUILD_FAILED', message: expect.stringMatching(/exit code 3: about to fail/) });
    expect(existsSync(path.join(imagesDir(dataDir), 'broken'))).toBe(false);
    expect(readdirSync(path.join(dataDir, '.image-work'))).toEqual([]);
    expect(mountsBelow(dataDir)).toEqual([]);
  });
});

describe('image import', () => {
  it('a directory, with its kernel and initrd from /boot', { timeout: 5 * MINUTES }, async () => {
    mkdirSync(path.join(extracted, 'boot'), { recursive: true });
    writeFileSync(path.join(extracted, 'boot', 'vmlinuz-6.1.0-1-amd64'), 'kernel');
    writeFileSync(path.join(extracted, 'boot', 'initrd.img-6.1.0-1-amd64'), 'initrd');
    const m = await importImage({ name: 'from-dir', from: extracted, dataDir, publicUrl: PUBLIC_URL });
    const imageDir = path.join(imagesDir(dataDir), 'from-dir');
    expect(m.source).toEqual({ kind: 'import', from: extracted });
    expect(readFileSync(path.join(imageDir, 'vmlinuz'), 'utf8')).toBe('kernel');
    expect(readFileSync(path.join(imageDir, 'initrd.img'), 'utf8')).toBe('initrd');
    expect(m.artefacts.kernel).toMatchObject({ file: 'vmlinuz', size: 6 });
    expectMatchesFiles(m, imageDir);
    const listing = sh('tar', ['--zstd', '-tvf', path.join(imageDir, 'rootfs.tar.zst')]);
    expect(listing).toMatch(/ \.\/etc\/rackseed-xattr$/m);
  });

  it('a .tar.gz, repacked to rootfs.tar.zst with its xattrs and ACLs', { timeout: 5 * MINUTES }, async () => {
    const tgz = path.join(dir, 'root.tar.gz');
    // Part of the tree keeps gzip (one core) quick; the files that carry the xattr and the ACL are in it.
    sh('tar', ['--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner', '-czf', tgz, '-C', extracted, './etc', './usr/bin', './boot']);
    const m = await importImage({ name: 'from-tgz', from: tgz, dataDir, publicUrl: PUBLIC_URL });
    expect(m.source).toEqual({ kind: 'import', from: tgz });
    const imageDir = path.join(imagesDir(dataDir), 'from-tgz');
    expectMatchesFiles(m, imageDir);
    const out = path.join(dir, 'from-tgz-out');
    mkdirSync(out);
    sh('tar', ['--xattrs', '--xattrs-include=*', '--acls', '--zstd', '-xf', path.join(imageDir, 'rootfs.tar.zst'), '-C', out, './etc']);
    expect(sh('getfattr', ['--only-values', '-n', 'user.rackseed', path.join(out, 'etc/rackseed-xattr')])).toBe('yes');
    expect(sh('getfacl', ['--omit-header', '--numeric', path.join(out, 'etc/rackseed-acl')])).toMatch(/^user:1234:r--$/m);
    expect(readdirSync(path.join(dataDir, '.image-work'))).toEqual([]);
  });

  it('refuses a file that is not a tarball, and a name that cannot be a directory', async () => {
    writeFileSync(path.join(dir, 'root.zip'), 'x');
    await expect(importImage({ name: 'z', from: path.join(dir, 'root.zip'), dataDir, publicUrl: PUBLIC_URL })).rejects.toMatchObject({ code: 'IMAGE_SOURCE_INVALID' });
    await expect(importImage({ name: '../evil', from: extracted, dataDir, publicUrl: PUBLIC_URL })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});

describe('rackseed image CLI', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer();
    const tiny = path.join(dir, 'tiny');
    mkdirSync(path.join(tiny, 'etc'), { recursive: true });
    writeFileSync(path.join(tiny, 'etc', 'hostname'), 'tiny\n');
    await importImage({ name: 'inuse', from: tiny, dataDir, publicUrl: PUBLIC_URL });
  });
  afterAll(async () => {
    await srv?.stop();
  });

  it('image list: a table and --json', async () => {
    const out = await cli('image', 'list');
    expect(out.split('\n')[1]).toMatch(/NAME\s+│\s+SOURCE\s+│\s+ROOTFS\s+│\s+KERNEL\s+│\s+CREATED\s+│\s+USED BY/);
    expect(out).toMatch(/mini\s+│\s+debootstrap bookworm \(minbase\)\s+│\s+[\d.]+ MiB\s+│\s+no\s+│/);
    expect(out).toMatch(/inuse\s+│\s+import .*│\s+compute,login\s+│/);
    const json = JSON.parse(await cli('--json', 'image', 'list')) as Array<ImageManifest & { usedBy: string[]; urlPath: string }>;
    expect(json.map((i) => i.name)).toEqual(['from-dir', 'from-tgz', 'inuse', 'mini']);
    expect(json.find((i) => i.name === 'mini')).toMatchObject({ torrent: built.torrent, urlPath: '/files/images/mini', usedBy: [] });
    expect(json.find((i) => i.name === 'inuse')?.usedBy).toEqual(['compute', 'login']);
  });

  it('image show: key/value lines and --json', async () => {
    const out = await cli('image', 'show', 'mini');
    expect(out).toMatch(/^name\s+mini$/m);
    expect(out).toMatch(new RegExp(`^rootfs\\s+rootfs\\.tar\\.zst\\s+[\\d.]+ MiB\\s+sha256 ${built.artefacts.rootfs.sha256}$`, 'm'));
    expect(out).toMatch(new RegExp(`^torrent\\s+.*info-hash ${built.torrent.infoHash}`, 'm'));
    expect(out).toMatch(/^packages\s+acl, attr$/m);
    expect(out).toMatch(/^url\s+http:\/\/10\.9\.8\.7:8080\/files\/images\/mini\/$/m);
    expect(JSON.parse(await cli('--json', 'image', 'show', 'mini'))).toMatchObject({ ...built, urlPath: '/files/images/mini' });
    await expect(cli('image', 'show', 'nosuch')).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
  });

  it('image remove: refused for an image groups use, naming them', async () => {
    await expect(cli('image', 'remove', 'inuse', '--yes')).rejects.toMatchObject({ code: 'IMAGE_IN_USE', message: expect.stringMatching(/used by groups compute, login/) });
    expect(existsSync(path.join(imagesDir(dataDir), 'inuse', 'manifest.json'))).toBe(true);
  });

  it('image remove: refused for an image installed_boot kernel nodes run (their kernel comes from it), naming them', async () => {
    const inventory = path.join(dir, 'inventory.yaml');
    const before = readFileSync(inventory, 'utf8');
    const kernelGroup = (boot: string) =>
      `cluster: { name: t }\ngroups:\n  compute: { image: inuse }\n  login: { image: inuse }\n  hpc: { image: inuse, installed_boot: ${boot} }\nnodes:\n  - { name: hpc01, mac: 52:54:00:00:09:01, group: hpc }\n`;
    const store = await SqliteStore.open(path.join(dataDir, 'rackseed.db'));
    try {
      // hpc01 was installed with from-dir before its group moved to inuse.
      const sha256 = parseManifest(readFileSync(path.join(imagesDir(dataDir), 'from-dir', 'manifest.json'), 'utf8'), 'manifest.json').artefacts.rootfs.sha256;
      await store.recordEvents([
        { node: 'hpc01', event: { type: 'assigned', group: 'hpc' } },
        { node: 'hpc01', event: { type: 'provision_started' } },
        { node: 'hpc01', event: { type: 'installed', image: { name: 'from-dir', sha256 } } },
      ]);
    } finally {
      await store.close();
    }
    try {
      writeFileSync(inventory, kernelGroup('kernel'));
      await expect(cli('image', 'remove', 'from-dir')).rejects.toMatchObject({ code: 'IMAGE_IN_USE', message: expect.stringMatching(/on the disk of node hpc01, which boot its kernel from this server/) });
      // Booting from its own disk (GRUB), the node does not need the image on the server.
      writeFileSync(inventory, kernelGroup('local'));
      expect(JSON.parse(await cli('--json', 'image', 'remove', 'from-dir'))).toMatchObject({ name: 'from-dir', removed: false });
    } finally {
      writeFileSync(inventory, before);
    }
    expect(existsSync(path.join(imagesDir(dataDir), 'from-dir', 'manifest.json'))).toBe(true);
  });

  it('image remove: refused while a node installs it (its plan named it, whatever its group names now), allowed once it is installed', async () => {
    const store = await SqliteStore.open(path.join(dataDir, 'rackseed.db'));
    const record = (events: Parameters<SqliteStore['recordEvents']>[0]) => store.recordEvents(events);
    try {
      // gpu07's installer fetched a plan for from-tgz; its group has moved to inuse since.
      await record([
        { node: 'gpu07', event: { type: 'assigned', group: 'compute' } },
        { node: 'gpu07', event: { type: 'provision_started' } },
        { node: 'gpu07', event: { type: 'stage', stage: 'plan', detail: { image: 'from-tgz', disk: '/dev/vda', ip: '10.0.0.7' } } },
        // Progress every 5 s: after 17 minutes the plan stage was more than 200 events back, out of the window looked at.
        ...Array.from({ length: 700 }, (_, i) => ({ node: 'gpu07', event: { type: 'stage' as const, stage: 'download', detail: { bytes: 1024 * (i + 1) } } })),
      ]);
    } finally {
      await store.close();
    }
    // Before: removed from under the download, which failed and needed a reimage.
    await expect(cli('image', 'remove', 'from-tgz', '--yes')).rejects.toMatchObject({ code: 'IMAGE_IN_USE', message: expect.stringMatching(/being installed on node gpu07/) });
    expect(existsSync(path.join(imagesDir(dataDir), 'from-tgz', 'manifest.json'))).toBe(true);
    const again = await SqliteStore.open(path.join(dataDir, 'rackseed.db'));
    try {
      await again.recordEvent({ node: 'gpu07', event: { type: 'installed' } });
    } finally {
      await again.close();
    }
    expect(JSON.parse(await cli('--json', 'image', 'remove', 'from-tgz'))).toMatchObject({ name: 'from-tgz', removed: false });
  });

  it('image remove: without --yes only says what would go; with --yes deletes and tells a running server', async () => {
    const dry = await cli('image', 'remove', 'from-tgz');
    expect(dry).toMatch(/^would delete .*from-tgz \([\d.]+ [KM]iB\):$/m);
    expect(dry).toMatch(/^ {2}rootfs\.tar\.zst {2}[\d.]+ [KM]iB$/m);
    expect(JSON.parse(await cli('--json', 'image', 'remove', 'from-tgz'))).toMatchObject({ name: 'from-tgz', removed: false });
    expect(existsSync(path.join(imagesDir(dataDir), 'from-tgz'))).toBe(true);

    const stderr = vi.spyOn(process.stderr, 'write');
    try {
      expect(await cli('--server', srv.httpUrl, '--token', srv.adminToken, 'image', 'remove', 'from-tgz', '--yes')).toMatch(/^removed image from-tgz \([\d.]+ [KM]iB freed\)$/m);
      // A server that is not running is fine: nothing to tell.
      expect(JSON.parse(await cli('--json', '--server', `http://127.0.0.1:${await unusedLoopbackPort()}`, '--token', 'x', 'image', 'remove', 'from-dir', '--yes'))).toMatchObject({ name: 'from-dir', removed: true });
      expect(stderr.mock.calls.map((c) => String(c[0])).filter((s) => s.includes('rescan'))).toEqual([]);
      // A server that answers but refuses is worth a warning; the removal itself stands.
      await importImage({ name: 'spare', from: path.join(dir, 'tiny'), dataDir, publicUrl: PUBLIC_URL });
      expect(await cli('--server', srv.httpUrl, '--token', 'wrong', 'image', 'remove', 'spare', '--yes')).toMatch(/^removed image spare/);
      expect(stderr.mock.calls.map((c) => String(c[0])).filter((s) => s.includes('rescan'))).toEqual([expect.stringMatching(/^rackseed: warning: the server was not told to rescan its images: .*\n$/)]);
    } finally {
      stderr.mockRestore();
    }
    expect(existsSync(path.join(imagesDir(dataDir), 'from-tgz'))).toBe(false);
    expect(JSON.parse(await cli('--json', 'image', 'list')).map((i: { name: string }) => i.name)).toEqual(['inuse', 'mini']);
  });

  it('image build and import through the CLI: refusals before any work; --json prints the manifest', { timeout: 5 * MINUTES }, async () => {
    // `image build` always runs debootstrap itself (uncached), so only its early refusals run here; the pipeline it
    // shares with import runs through `image import`.
    await expect(cli('image', 'build', 'mini', '--recipe', recipeFile)).rejects.toMatchObject({ code: 'IMAGE_EXISTS', message: expect.stringMatching(/--force/) });
    await expect(cli('image', 'build', 'other', '--recipe', path.join(dir, 'missing.yaml'))).rejects.toMatchObject({ code: 'IMAGE_RECIPE_INVALID' });
    const m = JSON.parse(await cli('--json', 'image', 'import', 'mini', extracted, '--force')) as ImageManifest;
    expect(m).toMatchObject({ name: 'mini', source: { kind: 'import', from: extracted } });
    expect(parseManifest(readFileSync(path.join(imagesDir(dataDir), 'mini', 'manifest.json'), 'utf8'), 'm')).toEqual(m);
  });
});

/** Processes in a process group, with the root directory each one sees (a chroot shows as its tree). */
function groupMembers(pgid: number): Array<{ pid: number; root: string }> {
  const found: Array<{ pid: number; root: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid) continue;
      found.push({ pid: Number(entry), root: readlinkSync(`/proc/${entry}/root`) });
    } catch {
      // Gone between readdir and read.
    }
  }
  return found;
}

describe('a build killed during its hook', () => {
  it('leaves its tree and mounts behind; a concurrent import keeps them, the next import after the kill takes them away', { timeout: 10 * MINUTES }, async () => {
    const work = path.join(dataDir, '.image-work');
    const small = path.join(dir, 'small-root');
    mkdirSync(path.join(small, 'etc'), { recursive: true });
    writeFileSync(path.join(small, 'etc', 'hostname'), 'small\n');
    // Its own process group, so the kill also reaches the hook it runs in the chroot: all of them started here.
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/build-child.ts', dataDir, recipeFile], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    if (!child.pid) throw new Error('the build child did not start');
    const pgid = child.pid;
    try {
      // Caught with the hook running inside the tree: a member of the group whose root is below the scratch space.
      await waitFor("the build's hook running in its chroot", () => groupMembers(pgid).some((p) => p.root.startsWith(`${work}/`)), 5 * MINUTES, 200).catch((err: Error) => {
        throw new Error(`${err.message}; the build child said: ${output}`);
      });
      const [tree, ...others] = readdirSync(work).filter((e) => e.includes('.killed-'));
      expect(others).toEqual([]);
      expect(tree).toMatch(new RegExp(`^${pgid}\\.\\d+\\.killed-`));
      const treeDir = path.join(work, tree ?? '');
      expect(mountsBelow(treeDir).map((m) => path.relative(treeDir, m)).sort()).toEqual(['rootfs/dev', 'rootfs/proc', 'rootfs/sys']);

      const stderr = vi.spyOn(process.stderr, 'write');
      try {
        // While the build lives, another import leaves its tree alone and says nothing about it.
        await cli('image', 'import', 'beside-live', small);
        expect(existsSync(treeDir)).toBe(true);
        expect(mountsBelow(treeDir)).toHaveLength(3);
        expect(stderr.mock.calls.map((c) => String(c[0])).filter((l) => l.includes(treeDir))).toEqual([]);

        process.kill(-pgid, 'SIGKILL');
        expect(await exited).toBe('SIGKILL');
        await waitFor('every process of the killed build gone', () => groupMembers(pgid).length === 0, 10_000);
        // What a killed build really leaves: the tree, with the host's /proc, /sys and /dev still mounted in it.
        expect(mountsBelow(treeDir)).toHaveLength(3);

        await cli('image', 'import', 'after-kill', small);
        expect(stderr.mock.calls.map((c) => String(c[0])).filter((l) => l.includes(treeDir))).toEqual([`rackseed: removed ${treeDir}: the scratch tree of a build, import or removal that was killed\n`]);
      } finally {
        stderr.mockRestore();
      }
      expect(readdirSync(work)).toEqual([]);
      expect(mountsBelow(dataDir)).toEqual([]);
      // Unmounted, not deleted through: the host's own /dev and /proc are whole.
      expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
      expect(existsSync('/proc/self/stat')).toBe(true);
      expect(existsSync(path.join(imagesDir(dataDir), 'killed'))).toBe(false);
      expect(existsSync(path.join(imagesDir(dataDir), 'after-kill', 'manifest.json'))).toBe(true);
    } finally {
      if (groupMembers(pgid).length) process.kill(-pgid, 'SIGKILL');
      // Whatever the outcome, the host's mounts do not stay in the test's directory.
      unmountBelow(work);
    }
  });
});

describe('bootable test image (test/support/debian-image.ts)', () => {
  it('a recipe with linux-image-amd64 yields vmlinuz and initrd.img; installImageInto retargets it', { timeout: 30 * MINUTES }, async () => {
    const t0 = Date.now();
    const img = await ensureBootableTestImage();
    console.log(`bootable image ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${img.dir}`);
    const m = parseManifest(readFileSync(path.join(img.dir, 'manifest.json'), 'utf8'), 'manifest.json');
    expect(m.artefacts.kernel?.size).toBeGreaterThan(1_000_000);
    expect(m.artefacts.initrd?.size).toBeGreaterThan(1_000_000);
    expect(readFileSync(path.join(img.dir, 'vmlinuz')).subarray(0x202, 0x206).toString()).toBe('HdrS');
    expect(existsSync(img.sshKey)).toBe(true);
    const t = await readTorrent(readFileSync(path.join(img.dir, 'rootfs.tar.zst.torrent')));
    expect(t.announce).toEqual([`${PLACEHOLDER_PUBLIC_URL}/announce`]);

    const target = path.join(dir, 'server-data');
    const moved = await installImageInto(target, 'http://192.0.2.1:8080', 'node-os');
    const imageDir = path.join(imagesDir(target), 'node-os');
    expect(moved).toMatchObject({ name: 'node-os', artefacts: m.artefacts, torrent: { infoHash: m.torrent.infoHash } });
    const t2 = await readTorrent(readFileSync(path.join(imageDir, 'rootfs.tar.zst.torrent')));
    expect(t2).toMatchObject({ infoHash: m.torrent.infoHash, announce: ['http://192.0.2.1:8080/announce'], urlList: ['http://192.0.2.1:8080/files/images/node-os/rootfs.tar.zst'] });
    expect(parseManifest(readFileSync(path.join(imageDir, 'manifest.json'), 'utf8'), 'm')).toEqual(moved);
    // The cache was linked, not written through.
    expect(parseManifest(readFileSync(path.join(img.dir, 'manifest.json'), 'utf8'), 'm')).toEqual(m);
  });
});
