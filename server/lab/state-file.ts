import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ProcessIdentity } from '../util/process-identity.js';

/**
 * What a running lab has made, written to <dir>/lab-state.json BEFORE each thing is made (a namespace is recorded,
 * then created), so `rackseed lab down` can undo exactly that even after `lab up` was killed half way: it deletes
 * only the namespaces named here and signals only the processes named here, and only while each PID still belongs
 * to the process that was started (same start time), never a later process that reused the number.
 */

export const LAB_STATE_FILE = 'lab-state.json';
/** Marks a directory as a lab's, so `lab up` only ever clears out a directory it made itself. */
export const LAB_MARKER_FILE = '.rackseed-lab';

export interface LabProcess extends ProcessIdentity {
  role: 'lab' | 'server' | 'vm' | 'relay';
  name: string;
}

export interface LabState {
  version: 1;
  prefix: string;
  namespaces: string[];
  processes: LabProcess[];
  url?: string;
}

export function readLabState(dir: string): LabState | undefined {
  const file = path.join(dir, LAB_STATE_FILE);
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as LabState;
  if (parsed.version !== 1 || !Array.isArray(parsed.namespaces) || !Array.isArray(parsed.processes)) throw new Error(`${file} is not a lab state file this version understands`);
  return parsed;
}

export function writeLabState(dir: string, state: LabState): void {
  const file = path.join(dir, LAB_STATE_FILE);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, file);
}

export function removeLabState(dir: string): void {
  rmSync(path.join(dir, LAB_STATE_FILE), { force: true });
}
