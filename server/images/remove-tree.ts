import { RackseedError } from '../model/errors.js';
import { mountsBelow } from '../util/mounts.js';
import { run } from './build-exec.js';

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
