import { chmodSync, chownSync, closeSync, existsSync, fsyncSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * Replaces a file's whole content so that a crash leaves either the old or the new text, never a truncated one:
 * the new text is written next to the file, flushed to disk, renamed over it, and the rename is flushed too. A
 * symbolic link is followed (an inventory linked from a git checkout stays in that checkout, and the link stays a
 * link), and the file keeps its permission bits and, where the process may set them, its owner and group.
 */
export function replaceFileDurably(file: string, text: string, newFileMode = 0o644): void {
  const target = existsSync(file) ? realpathSync(file) : file;
  const before = existsSync(target) ? statSync(target) : undefined;
  const mode = before ? before.mode & 0o7777 : newFileMode;
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      // write() may write less than asked (a disk filling up): a single call would rename a truncated file into place.
      const data = Buffer.from(text, 'utf8');
      for (let written = 0; written < data.length; ) written += writeSync(fd, data, written, data.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // openSync's mode is filtered by the umask; the file must end with exactly the mode it had.
    chmodSync(tmp, mode);
    if (before) keepOwner(tmp, before.uid, before.gid);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncPath(path.dirname(target));
}

function keepOwner(file: string, uid: number, gid: number): void {
  try {
    chownSync(file, uid, gid);
  } catch {
    // Not permitted (another user's file): the new file keeps this process's owner, as any editor would leave it.
  }
}

/** Flushes a file's data, or a directory's entry changes (a rename), to disk. */
export function fsyncPath(file: string): void {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
