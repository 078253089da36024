import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scratchDir, scratchOwner, scratchRoot, sweepScratch } from '../../server/images/scratch.js';
import { ensureCached } from '../../server/util/build-cache.js';
import { mountsBelow, unmountBelow } from '../../server/util/mounts.js';
import { processStartTicks, thisProcess } from '../../server/util/process-identity.js';

// Mounts stand in for the host's /dev and /proc a killed build leaves in its tree: a bind mount of a directory
// holding a file that must survive the sweep, and a tmpfs mounted inside that bind mount (deepest first).
const dirs: string[] = [];
function freshDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'rackseed-sweep-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) {
    unmountBelow(d);
    if (mountsBelow(d).length === 0) rmSync(d, { recursive: true, force: true });
  }
});

/** A tree with a bind mount of `hostDev` at rootfs/dev and a tmpfs at rootfs/dev/shm, as a killed hook leaves it. */
function treeWithMounts(tree: string, hostDev: string): void {
  mkdirSync(path.join(tree, 'rootfs', 'dev'), { recursive: true });
  execFileSync('mount', ['--bind', hostDev, path.join(tree, 'rootfs', 'dev')]);
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', path.join(tree, 'rootfs', 'dev', 'shm')]);
  writeFileSync(path.join(tree, 'rootfs', 'etc-passwd'), 'root:x:0:0\n');
}

function hostDevStandIn(base: string): string {
  const dev = path.join(base, 'host-dev');
  mkdirSync(path.join(dev, 'shm'), { recursive: true });
  writeFileSync(path.join(dev, 'null'), 'must survive\n');
  return dev;
}

/** A process started here and then ended: its identity now names nobody. */
async function deadProcess(): Promise<{ pid: number; startTicks: number }> {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  if (!child.pid) throw new Error('sleep did not start');
  const startTicks = processStartTicks(child.pid);
  if (startTicks === undefined) throw new Error('sleep has no start time');
  const gone = new Promise((r) => child.on('exit', r));
  child.kill('SIGKILL');
  await gone;
  return { pid: child.pid, startTicks };
}

describe('scratch trees of killed runs (images/scratch.ts)', () => {
  it('reads the owner from the name; a name without one has none', () => {
    const table: Array<[string, ReturnType<typeof scratchOwner>]> = [
      ['123.456.mini-AbC123', { pid: 123, startTicks: 456 }],
      ['1.0.removed-mini-xyzxyz', { pid: 1, startTicks: 0 }],
      ['mini-AbC123', undefined],
      ['123.mini-AbC123', undefined],
      ['x123.456.mini-AbC123', undefined],
    ];
    for (const [entry, owner] of table) expect(scratchOwner(entry), entry).toEqual(owner);
  });

  it('names a new scratch directory after this process', () => {
    const dataDir = freshDir();
    const me = thisProcess();
    const made = scratchDir(dataDir, 'mini');
    expect(path.dirname(made)).toBe(scratchRoot(dataDir));
    expect(scratchOwner(path.basename(made))).toEqual(me);
    expect(path.basename(made)).toMatch(new RegExp(`^${me.pid}\\.${me.startTicks}\\.mini-`));
  });

  it('unmounts and deletes a dead owner\'s tree (also a reused PID), keeps a live one\'s and one without an owner', async () => {
    const base = freshDir();
    const dataDir = path.join(base, 'data');
    const hostDev = hostDevStandIn(base);
    const root = scratchRoot(dataDir);
    const dead = await deadProcess();
    const me = thisProcess();
    const deadTree = path.join(root, `${dead.pid}.${dead.startTicks}.mini-aaaaaa`);
    // This process's PID with another start time: a later process that reused the number of a killed build.
    const reusedTree = path.join(root, `${me.pid}.${me.startTicks + 1}.mini-bbbbbb`);
    const liveTree = path.join(root, `${me.pid}.${me.startTicks}.mini-cccccc`);
    const unowned = path.join(root, 'mini-dddddd');
    treeWithMounts(deadTree, hostDev);
    mkdirSync(reusedTree, { recursive: true });
    treeWithMounts(liveTree, hostDev);
    mkdirSync(unowned, { recursive: true });

    const sweep = await sweepScratch(dataDir);
    expect([...sweep.removed].sort()).toEqual([deadTree, reusedTree].sort());
    expect(sweep.kept).toEqual([{ dir: unowned, reason: expect.stringMatching(/records no owner.*delete it by hand/) }]);
    expect(readdirSync(root).sort()).toEqual([path.basename(liveTree), path.basename(unowned)].sort());
    // Detached, never deleted through: the bind mount's source is whole; the live build keeps its mounts.
    expect(readFileSync(path.join(hostDev, 'null'), 'utf8')).toBe('must survive\n');
    expect(existsSync(path.join(hostDev, 'shm'))).toBe(true);
    expect(mountsBelow(deadTree)).toEqual([]);
    expect(mountsBelow(liveTree)).toHaveLength(2);
  });

  it('a data directory without scratch space sweeps to nothing', async () => {
    expect(await sweepScratch(path.join(freshDir(), 'none'))).toEqual({ removed: [], kept: [] });
  });
});

describe('build cache (util/build-cache.ts): a killed builder\'s temporary tree', () => {
  it('is unmounted before it is deleted', async () => {
    const base = freshDir();
    const cacheRoot = path.join(base, 'cache');
    const hostDev = hostDevStandIn(base);
    const dead = await deadProcess();
    const abandoned = path.join(cacheRoot, `.debootstrap-0123456789abcdef.tmp-${dead.pid}-abcd1234`);
    treeWithMounts(abandoned, hostDev);
    await ensureCached('other', { v: 1 }, async () => {}, cacheRoot);
    expect(existsSync(abandoned)).toBe(false);
    expect(mountsBelow(base)).toEqual([]);
    expect(readFileSync(path.join(hostDev, 'null'), 'utf8')).toBe('must survive\n');
  });
});
