import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RackseedError } from '../model/errors.js';
import { exited, run, tail } from './build-exec.js';

/**
 * The one rootfs format every image has: tar with xattrs and ACLs (capabilities, SELinux labels and ACLs survive),
 * numeric owners (the image's uids, not the build host's names), one file system (nothing mounted below the root),
 * compressed with zstd on all cores.
 */
export const TAR_CREATE_ARGS = ['--xattrs', "--xattrs-include=*", '--acls', '--numeric-owner', '--one-file-system'];

/** Bytes below `dir` on its own file system: the size of the tar stream, near enough for a progress bar. */
export async function treeBytes(dir: string): Promise<number> {
  const out = await run('du', ['--apparent-size', '--block-size=1', '--summarize', '--one-file-system', dir]);
  return Number.parseInt(out, 10) || 0;
}

/**
 * `tar -C dir -cf - . | zstd -T0 -3 > out`, streamed: no temporary copy of the tree or the tarball. Both exit codes
 * count; `onBytes` sees the uncompressed tar stream as it is read.
 */
export async function packTree(dir: string, out: string, onBytes: (n: number) => void = () => {}): Promise<void> {
  const tar = spawn('tar', [...TAR_CREATE_ARGS, '-C', dir, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const zstd = spawn('zstd', ['-T0', '-3', '-q', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const tarExit = exited(tar);
  const zstdExit = exited(zstd);
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
  const streams = Promise.allSettled([pipeline(tar.stdout, counter, zstd.stdin), pipeline(zstd.stdout, createWriteStream(out))]);
  const [t, z] = await Promise.allSettled([tarExit, zstdExit]);
  const [feed, write] = await streams;
  const failures: string[] = [];
  if (t.status === 'rejected') failures.push(`tar: ${(t.reason as Error).message}`);
  else if (t.value.code !== 0) failures.push(`tar exited with ${t.value.code}: ${tail(t.value.stderr)}`);
  if (z.status === 'rejected') failures.push(`zstd: ${(z.reason as Error).message}`);
  else if (z.value.code !== 0) failures.push(`zstd exited with ${z.value.code}: ${tail(z.value.stderr)}`);
  // A broken pipe is only the echo of a failed tool above; report it alone only if both tools claim success.
  if (failures.length === 0 && feed.status === 'rejected') failures.push(`tar | zstd: ${(feed.reason as Error).message}`);
  if (write.status === 'rejected') failures.push(`writing ${out}: ${(write.reason as Error).message}`);
  if (failures.length) throw new RackseedError('IMAGE_BUILD_FAILED', `packing ${dir} failed: ${failures.join('; ')}`, { dir, out });
}
