import { spawn } from 'node:child_process';
import { createReadStream, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RackseedError } from '../model/errors.js';
import type { ImageManifest } from '../model/image.js';
import { exited, tail } from './build-exec.js';
import { checkImageName, checkNotExisting, publishImage } from './build-publish.js';
import { noProgress, type ProgressFn } from './progress.js';
import { inScratch, type Notice } from './scratch.js';

/** tar's decompression flag for a tarball, by its name; undefined if it is not one we take. */
export function tarballCompression(file: string): string[] | undefined {
  if (/\.tar$/.test(file)) return [];
  if (/\.(tar\.gz|tgz)$/.test(file)) return ['--gzip'];
  if (/\.(tar\.zst|tzst)$/.test(file)) return ['--zstd'];
  return undefined;
}

/** Unpacks a tarball as root would: owners by number, modes, xattrs and ACLs kept. */
async function extract(file: string, into: string, compression: string[], report: ProgressFn): Promise<void> {
  mkdirSync(into);
  const total = statSync(file).size;
  const tar = spawn('tar', ['-x', ...compression, '--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner', '--same-permissions', '-f', '-', '-C', into], { stdio: ['pipe', 'ignore', 'pipe'] });
  const done = exited(tar);
  let read = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      read += chunk.length;
      report({ stage: 'extract', done: read, total });
      cb(null, chunk);
    },
  });
  const [feed, exit] = await Promise.allSettled([pipeline(createReadStream(file), counter, tar.stdin), done]);
  if (exit.status === 'rejected' || exit.value.code !== 0) {
    const why = exit.status === 'rejected' ? (exit.reason as Error).message : `tar exited with ${exit.value.code}: ${tail(exit.value.stderr)}`;
    throw new RackseedError('IMAGE_SOURCE_INVALID', `cannot unpack ${file}: ${why}`, { file });
  }
  if (feed.status === 'rejected') throw new RackseedError('IMAGE_SOURCE_INVALID', `cannot read ${file}: ${(feed.reason as Error).message}`, { file });
}

export interface ImportOptions {
  name: string;
  /** A root file system: a directory, or a .tar, .tar.gz or .tar.zst of one. */
  from: string;
  dataDir: string;
  publicUrl: string;
  force?: boolean;
  onProgress?: ProgressFn;
  /** Told what was done about the scratch trees of killed runs (see scratch.ts). */
  onNotice?: Notice;
}

/**
 * Makes an image of an existing root file system, repacked into the one rootfs format; its kernel and initrd are
 * taken from its /boot when it has them. A directory is packed where it is (nothing mounted below it is included).
 */
export async function importImage(o: ImportOptions): Promise<ImageManifest> {
  checkImageName(o.name);
  checkNotExisting(o.dataDir, o.name, o.force === true);
  const from = path.resolve(o.from);
  let isDir: boolean;
  try {
    isDir = statSync(from).isDirectory();
  } catch (cause) {
    throw new RackseedError('IMAGE_SOURCE_INVALID', `${from}: ${(cause as Error).message}`, { from }, { cause });
  }
  const compression = isDir ? [] : tarballCompression(from);
  if (!compression) throw new RackseedError('IMAGE_SOURCE_INVALID', `${from}: expected a directory or a .tar, .tar.gz or .tar.zst file`, { from });
  const report = o.onProgress ?? noProgress;
  return inScratch(o.dataDir, o.name, async (work) => {
    const tree = isDir ? from : path.join(work, 'rootfs');
    if (!isDir) await extract(from, tree, compression, report);
    return publishImage({
      name: o.name,
      dataDir: o.dataDir,
      publicUrl: o.publicUrl,
      tree,
      work,
      source: { kind: 'import', from },
      force: o.force === true,
      requireKernel: false,
      onProgress: report,
    });
  }, o.onNotice);
}
