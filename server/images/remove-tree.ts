import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RackseedError } from '../model/errors.js';
import { run } from './build-exec.js';

/** Mount points at or below `dir` (from /proc/self/mountinfo, whose paths escape spaces as \040). */
export function mountsBelow(dir: string): string[] {
  const root = path.resolve(dir);
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined)
    .map((m) => m.replace(/\\([0-7]{3})/g, (_s, o: string) => String.fromCharCode(Number.parseInt(o, 8))))
    .filter((m) => m === root || m.startsWith(`${root}/`));
}

/**
 * Deletes a build tree. A chroot tree may still have the host's /dev, /proc or /sys mounted below it if an unmount
 * failed; deleting through such a mount would delete the host's files, so this refuses instead, and rm stays on
 * the tree's own file system in any case.
 */
export async function removeTree(dir: string): Promise<void> {
  const mounted = mountsBelow(dir);
  if (mounted.length) {
    throw new RackseedError('IMAGE_BUILD_FAILED', `not removing ${dir}: ${mounted.join(', ')} still mounted (unmount, then delete it by hand)`, { dir, mounted });
  }
  await run('rm', ['-rf', '--one-file-system', '--', dir]);
}
