import { chmodSync, lstatSync, mkdirSync, rmSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { RackseedError } from '../model/errors.js';
import type { ImageRecipe } from '../model/image.js';
import { run } from './build-exec.js';
import { mountsBelow } from '../util/mounts.js';
import { HOOK_SCRIPT, POLICY_RC_D } from './manifest.js';
import { pathInTree } from './tree-path.js';

/**
 * A recipe path inside the tree, its symlinks followed within the tree (the build runs as root: a path through
 * /var/run -> /run resolved on the host would write the build host's /run). The file itself is replaced, not
 * followed.
 */
function inside(root: string, p: string): string {
  const full = pathInTree(root, p, { followLast: false });
  if (full === path.resolve(root)) throw new Error(`${p} is the image's root, not a file in it`);
  return full;
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function writeRecipeFiles(root: string, files: ImageRecipe['files']): void {
  for (const f of files) {
    const full = inside(root, f.path);
    mkdirSync(path.dirname(full), { recursive: true });
    // unlink, not rm: the entry itself goes (a link to a directory included; Node 24's rmSync follows it).
    const existing = lstatOrUndefined(full);
    if (existing?.isDirectory()) throw new RackseedError('IMAGE_BUILD_FAILED', `${f.path} is a directory in the image: a recipe file cannot replace it`, { path: f.path });
    if (existing) unlinkSync(full);
    writeFileSync(full, f.content);
    chmodSync(full, Number.parseInt(f.mode ?? '0644', 8));
  }
}

const MOUNTS: Array<{ target: string; args: string[] }> = [
  { target: 'proc', args: ['-t', 'proc', 'proc'] },
  { target: 'sys', args: ['-t', 'sysfs', 'sysfs'] },
  { target: 'dev', args: ['--bind', '/dev'] },
];


/**
 * Runs the recipe's hook with `sh -e` chrooted into the tree, with /proc, /sys and /dev mounted for it. The mounts
 * are always undone, whatever the hook did; an unmount that fails is an error (the tree must not be packed or
 * deleted with the host's /dev inside it).
 */
export async function runHook(root: string, hook: string, onLine: (line: string) => void = () => {}): Promise<void> {
  const script = inside(root, HOOK_SCRIPT);
  mkdirSync(path.dirname(script), { recursive: true });
  writeFileSync(script, hook, { mode: 0o700 });
  // Package scripts run by a hook must not start daemons inside the build host's chroot.
  const policy = inside(root, POLICY_RC_D);
  writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  const mounted: string[] = [];
  try {
    for (const m of MOUNTS) {
      // Followed within the tree: mount(8) follows a link itself, and one to the host's /dev would be mounted over.
      const target = pathInTree(root, `/${m.target}`);
      mkdirSync(target, { recursive: true });
      await run('mount', [...m.args, target]);
      mounted.push(target);
    }
    await run('chroot', [root, '/bin/sh', '-e', HOOK_SCRIPT], {
      onLine,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
    });
  } finally {
    const failed: string[] = [];
    for (const target of mounted.reverse()) {
      try {
        await run('umount', [target]);
      } catch {
        // Something in the chroot still holds it (a daemon the hook left behind): detach it lazily.
        await run('umount', ['--lazy', target]).catch(() => failed.push(target));
      }
    }
    rmSync(script, { force: true });
    rmSync(policy, { force: true });
    const left = mountsBelow(root);
    if (failed.length || left.length) throw new RackseedError('IMAGE_BUILD_FAILED', `cannot unmount ${[...failed, ...left].join(', ')} after the hook`, { root });
  }
}
