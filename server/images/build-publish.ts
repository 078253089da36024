import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RackseedError } from '../model/errors.js';
import { IMAGE_FILES, IMAGE_NAME, type Artefact, type ImageManifest } from '../model/image.js';
import { imagesDir } from './catalog.js';
import { hashFile } from './hash.js';
import { parseManifest } from './manifest.js';
import { packTree, treeBytes } from './pack.js';
import type { ProgressFn } from './progress.js';
import { makeTorrent } from './torrent.js';
import { pathInTree } from './tree-path.js';

export function checkImageName(name: string): void {
  if (!IMAGE_NAME.test(name)) {
    throw new RackseedError('BAD_REQUEST', `image name "${name}" is not allowed (lower-case letters, digits, ".", "_", "-"; at most 63)`, { name });
  }
}

/** Fails early (before a build of many minutes) when the image exists and may not be replaced. */
export function checkNotExisting(dataDir: string, name: string, force: boolean): void {
  const dir = path.join(imagesDir(dataDir), name);
  if (!force && existsSync(dir)) throw new RackseedError('IMAGE_EXISTS', `image "${name}" already exists in ${dir} (pass --force to replace it)`, { name, dir });
}

/** Debian version order is close enough to natural order for kernel file names (6.1.0-9 < 6.1.0-10). */
function newest(names: string[]): string | undefined {
  return [...names].sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1);
}

/** The tree's newest kernel and its initramfs (boot/vmlinuz-V, boot/initrd.img-V), if it has them. */
/**
 * The newest kernel in the tree's /boot and its initrd, as host paths. Links are followed inside the tree, as the
 * node's boot loader would: an imported tree's `vmlinuz-x -> /etc/shadow` read on the host would publish the build
 * host's file under /files. Only regular files count.
 */
export function findKernel(tree: string): { kernel?: string; initrd?: string } {
  const boot = pathInTree(tree, '/boot');
  const names = existsSync(boot) && statSync(boot).isDirectory() ? readdirSync(boot) : [];
  const file = (name: string): string | undefined => {
    const full = pathInTree(tree, `/boot/${name}`);
    return existsSync(full) && lstatSync(full).isFile() ? full : undefined;
  };
  const kernelName = newest(names.filter((n) => n.startsWith('vmlinuz-') && file(n) !== undefined));
  if (!kernelName) return {};
  const initrd = file(`initrd.img-${kernelName.slice('vmlinuz-'.length)}`);
  return { kernel: file(kernelName)!, ...(initrd ? { initrd } : {}) };
}

export function torrentUrls(publicUrl: string, name: string): { announce: string[]; webSeeds: string[] } {
  const base = publicUrl.replace(/\/+$/, '');
  return { announce: [`${base}/announce`], webSeeds: [`${base}/files/images/${name}/${IMAGE_FILES.rootfs}`] };
}

/** Replaces a file by rename: readers see the old or the new file, never half of one (and hard links stay intact). */
export function writeFileAtomic(file: string, data: string | Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/**
 * Writes the torrent for the image's tarball (announce and web seed at `publicUrl`), then the manifest, last: a
 * directory whose manifest is missing is never catalogued. Also how an image moves to another server URL.
 */
export async function writeTorrentAndManifest(dir: string, base: Omit<ImageManifest, 'torrent'>, publicUrl: string, onProgress: ProgressFn, pieceLength?: number): Promise<ImageManifest> {
  const rootfs = path.join(dir, IMAGE_FILES.rootfs);
  const torrent = await makeTorrent(
    { file: rootfs, ...torrentUrls(publicUrl, base.name), ...(pieceLength ? { pieceLength } : {}), onProgress: (done, total) => onProgress({ stage: 'torrent', done, total }) },
    base.artefacts.rootfs.size,
  );
  writeFileAtomic(path.join(dir, IMAGE_FILES.torrent), torrent.bytes);
  const manifest: ImageManifest = { ...base, torrent: { file: IMAGE_FILES.torrent, infoHash: torrent.infoHash, pieceLength: torrent.pieceLength } };
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  parseManifest(text, path.join(dir, IMAGE_FILES.manifest));
  writeFileAtomic(path.join(dir, IMAGE_FILES.manifest), text);
  return manifest;
}

/**
 * Re-points an image directory at another server (name and URL): new torrent, new manifest, same artefacts. The
 * piece size is the old torrent's, so the info-hash stays the same even when the default piece size has changed.
 */
export async function retargetImage(dir: string, name: string, publicUrl: string, onProgress: ProgressFn = () => {}): Promise<ImageManifest> {
  checkImageName(name);
  const file = path.join(dir, IMAGE_FILES.manifest);
  const { torrent: old, ...base } = parseManifest(readFileSync(file, 'utf8'), file);
  return writeTorrentAndManifest(dir, { ...base, name }, publicUrl, onProgress, old.pieceLength);
}

export interface PublishOptions {
  name: string;
  dataDir: string;
  publicUrl: string;
  /** The root file system to pack. */
  tree: string;
  /** The build's scratch directory on the data directory's file system (the image is staged in it, then renamed). */
  work: string;
  source: ImageManifest['source'];
  force: boolean;
  requireKernel: boolean;
  onProgress: ProgressFn;
}

/** Tree to served image: kernel and initrd out, tar+zstd, hashes, torrent, manifest, then one rename into place. */
export async function publishImage(o: PublishOptions): Promise<ImageManifest> {
  const stage = path.join(o.work, 'image');
  mkdirSync(stage);
  const found = findKernel(o.tree);
  if (o.requireKernel && !(found.kernel && found.initrd)) {
    throw new RackseedError('IMAGE_BUILD_FAILED', `the recipe installs a kernel but ${path.join(o.tree, 'boot')} has no vmlinuz-*/initrd.img-* pair`);
  }
  if (found.kernel) copyFileSync(found.kernel, path.join(stage, IMAGE_FILES.kernel));
  if (found.initrd) copyFileSync(found.initrd, path.join(stage, IMAGE_FILES.initrd));

  const estimate = await treeBytes(o.tree);
  let packed = 0;
  await packTree(o.tree, path.join(stage, IMAGE_FILES.rootfs), (n) => {
    packed += n;
    o.onProgress({ stage: 'pack', done: packed, total: Math.max(packed, estimate) });
  });

  const files = [IMAGE_FILES.rootfs, ...(found.kernel ? [IMAGE_FILES.kernel] : []), ...(found.initrd ? [IMAGE_FILES.initrd] : [])].map((f) => path.join(stage, f));
  const total = files.reduce((n, f) => n + statSync(f).size, 0);
  let hashed = 0;
  const sums: Artefact[] = [];
  for (const f of files) {
    sums.push(
      await hashFile(f, (n) => {
        hashed += n;
        o.onProgress({ stage: 'hash', done: hashed, total });
      }),
    );
  }
  const [rootfs, ...rest] = sums;
  const artefacts: ImageManifest['artefacts'] = { rootfs: rootfs! };
  for (const a of rest) artefacts[a.file === IMAGE_FILES.kernel ? 'kernel' : 'initrd'] = a;

  const manifest = await writeTorrentAndManifest(stage, { version: 1, name: o.name, createdAt: new Date().toISOString(), source: o.source, artefacts }, o.publicUrl, o.onProgress);
  o.onProgress({ stage: 'publish', done: 0, total: 1 });
  installStaged(stage, o);
  o.onProgress({ stage: 'publish', done: 1, total: 1 });
  return manifest;
}

/** One rename into <data_dir>/files/images/<name>; a replaced image is moved into the scratch directory to die with it. */
function installStaged(stage: string, o: Pick<PublishOptions, 'dataDir' | 'name' | 'work' | 'force'>): void {
  const root = imagesDir(o.dataDir);
  mkdirSync(root, { recursive: true });
  const final = path.join(root, o.name);
  if (existsSync(final)) {
    checkNotExisting(o.dataDir, o.name, o.force);
    renameSync(final, path.join(o.work, 'replaced'));
  }
  renameSync(stage, final);
}
