import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

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
 * Unmounts everything at or below `dir`, deepest first (so /dev/pts before /dev), lazily where a mount is still busy;
 * returns what stays mounted. Only for trees whose builder is gone: what a killed debootstrap or hook left mounted
 * there is the host's /proc, /sys and /dev, which must be detached, never deleted through.
 */
export function unmountBelow(dir: string): string[] {
  for (const target of mountsBelow(dir).sort((a, b) => b.length - a.length)) {
    if (spawnSync('umount', [target], { stdio: 'ignore' }).status !== 0) spawnSync('umount', ['--lazy', target], { stdio: 'ignore' });
  }
  return mountsBelow(dir);
}
