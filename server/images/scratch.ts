import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { stillRunning, thisProcess, type ProcessIdentity } from '../util/process-identity.js';
import { unmountBelow } from '../util/mounts.js';
import { removeTree } from './remove-tree.js';

/**
 * Scratch space for builds, imports and removals, on the data directory's own file system so a finished image is
 * renamed into place, not copied. Each scratch directory's name starts with its owner's PID and start time
 * (`<pid>.<startTicks>.<name>-XXXXXX`), so a later run can tell the tree of a build that was killed (kill -9, a
 * reboot) from one still in progress, and take it away: a debootstrap tree is hundreds of MB.
 */
export const SCRATCH_DIR = '.image-work';

const OWNED = /^(\d+)\.(\d+)\./;

export function scratchRoot(dataDir: string): string {
  return path.join(dataDir, SCRATCH_DIR);
}

export function scratchDir(dataDir: string, name: string): string {
  const root = scratchRoot(dataDir);
  mkdirSync(root, { recursive: true });
  const me = thisProcess();
  return mkdtempSync(path.join(root, `${me.pid}.${me.startTicks}.${name}-`));
}

/** The process that made a scratch directory, from its name; undefined for a name without one. */
export function scratchOwner(entry: string): ProcessIdentity | undefined {
  const m = OWNED.exec(entry);
  return m ? { pid: Number(m[1]), startTicks: Number(m[2]) } : undefined;
}

export interface ScratchSweep {
  /** Trees of dead builds, now deleted. */
  removed: string[];
  /** Trees left in place, and why (a live owner is not listed: that is an ordinary concurrent build). */
  kept: { dir: string; reason: string }[];
}

/**
 * Deletes the scratch trees whose owner is gone, first undoing what a killed hook left mounted in them (the host's
 * /proc, /sys and /dev: unmounted, never deleted through). Never fails the caller: what it cannot delete is kept
 * and reported with the reason.
 */
export async function sweepScratch(dataDir: string): Promise<ScratchSweep> {
  const root = scratchRoot(dataDir);
  const sweep: ScratchSweep = { removed: [], kept: [] };
  if (!existsSync(root)) return sweep;
  for (const entry of readdirSync(root).sort()) {
    const dir = path.join(root, entry);
    const owner = scratchOwner(entry);
    if (!owner) {
      sweep.kept.push({ dir, reason: 'its name records no owner (an older rackseed made it): delete it by hand once no build or import runs' });
      continue;
    }
    if (stillRunning(owner)) continue;
    try {
      unmountBelow(dir);
      await removeTree(dir);
      sweep.removed.push(dir);
    } catch (err) {
      sweep.kept.push({ dir, reason: (err as Error).message });
    }
  }
  return sweep;
}

/** Where a build, import or removal tells its operator what the sweep did (the CLI: stderr). */
export type Notice = (message: string) => void;

export const noNotice: Notice = () => {};

/** Sweeps, then says what was deleted and what could not be. */
export async function sweepAndTell(dataDir: string, notice: Notice): Promise<ScratchSweep> {
  const sweep = await sweepScratch(dataDir);
  for (const dir of sweep.removed) notice(`removed ${dir}: the scratch tree of a build, import or removal that was killed`);
  for (const k of sweep.kept) notice(`left ${k.dir} in place: ${k.reason}`);
  return sweep;
}

/**
 * Runs `body` in a fresh scratch directory that is removed afterwards, success or failure; first takes away the
 * trees of earlier runs that were killed.
 */
export async function inScratch<T>(dataDir: string, name: string, body: (work: string) => Promise<T>, notice: Notice = noNotice): Promise<T> {
  await sweepAndTell(dataDir, notice);
  const work = scratchDir(dataDir, name);
  let result: T;
  try {
    result = await body(work);
  } catch (err) {
    // The build's own error is the one to report; a failed cleanup is only appended.
    await removeTree(work).catch((cleanup: Error) => {
      if (err instanceof Error) err.message += ` (and ${cleanup.message})`;
    });
    throw err;
  }
  await removeTree(work);
  return result;
}
