import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { Say } from './artefacts.js';
import { stillRunning } from '../util/process-identity.js';
import { readLabState, removeLabState, type LabProcess } from './state-file.js';

/**
 * `rackseed lab down`: undoes what the state file says a lab made, whether its `lab up` is still running (it is
 * asked to stop and tears down in order), was killed (its processes and namespaces are left: they are removed here),
 * or died half way (whatever was recorded and does not exist is skipped). Only recorded PIDs still belonging to the
 * recorded process are signalled; only recorded namespaces are deleted, and with them their bridge and taps.
 */

export interface LabDownReport {
  /** False when the directory held no lab state. */
  found: boolean;
  stopped: string[];
  namespacesRemoved: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitGone(p: LabProcess, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (stillRunning(p)) {
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
  return true;
}

async function stopProcess(p: LabProcess, graceMs: number): Promise<void> {
  if (!stillRunning(p)) return;
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitGone(p, graceMs)) return;
  if (stillRunning(p)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Gone in between.
    }
    await waitGone(p, 5_000);
  }
}

function existingNamespaces(): Set<string> {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return new Set((r.stdout ?? '').split('\n').map((l) => l.split(' ')[0]!).filter(Boolean));
}

export async function labDown(dir: string, say: Say = () => {}): Promise<LabDownReport> {
  const abs = path.resolve(dir);
  const state = readLabState(abs);
  if (!state) return { found: false, stopped: [], namespacesRemoved: [] };
  const stopped: string[] = [];

  // The lab's own process first: it stops its machines, relay and server in order and deletes its namespaces.
  const owner = state.processes.find((p) => p.role === 'lab');
  if (owner && owner.pid !== process.pid && stillRunning(owner)) {
    say(`asking rackseed lab up (pid ${owner.pid}) to take the lab down`);
    await stopProcess(owner, 90_000);
    stopped.push(`${owner.name} (pid ${owner.pid})`);
  }
  // Whatever is still running (lab up was killed, or did not finish): machines, then the relay, then the server.
  const order: LabProcess['role'][] = ['vm', 'relay', 'server'];
  for (const role of order) {
    const group = state.processes.filter((p) => p.role === role && stillRunning(p));
    await Promise.all(
      group.map(async (p) => {
        say(`stopping ${p.name} (pid ${p.pid})`);
        await stopProcess(p, role === 'server' ? 15_000 : 5_000);
        stopped.push(`${p.name} (pid ${p.pid})`);
      }),
    );
  }
  const present = existingNamespaces();
  const namespacesRemoved: string[] = [];
  for (const ns of [...state.namespaces].reverse()) {
    if (!present.has(ns)) continue;
    const r = spawnSync('ip', ['netns', 'del', ns], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip netns del ${ns} failed: ${r.stderr.trim()}`);
    namespacesRemoved.push(ns);
    say(`removed namespace ${ns} (with its bridge and taps)`);
  }
  for (const p of state.processes) if (p.role === 'vm') rmSync(path.join(abs, 'vms', `${p.name}.qcow2`), { force: true });
  rmSync(path.join(abs, 'http.sock'), { force: true });
  removeLabState(abs);
  return { found: true, stopped, namespacesRemoved };
}
