import { lstatSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { RackseedError } from '../model/errors.js';

/** How many symlinks one lookup may follow, as the kernel's ELOOP limit. */
const MAX_LINKS = 40;

/**
 * The host path of `p` inside an OS tree, with the symlinks along it followed as they will be once the tree is the
 * node's root: an absolute link (Debian's /var/run -> /run) points into the tree, never at the build host, and `..`
 * stops at the tree's root. The last component is not followed when `followLast` is false (a file about to be
 * replaced). Components that do not exist yet are taken as written.
 */
export function pathInTree(root: string, p: string, options: { followLast?: boolean } = {}): string {
  const top = path.resolve(root);
  const pending = p.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const here = path.join(top, ...done, part);
    const last = pending.length === 0;
    let target: string | undefined;
    try {
      if ((!last || options.followLast !== false) && lstatSync(here).isSymbolicLink()) target = readlinkSync(here);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
    }
    if (target === undefined) {
      done.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new RackseedError('IMAGE_BUILD_FAILED', `${p}: too many symbolic links in the image tree`, { path: p });
    if (target.startsWith('/')) done.length = 0;
    pending.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
  }
  return path.join(top, ...done);
}
