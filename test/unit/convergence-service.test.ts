import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { convergeProgressLine, formatConverge } from '../../server/cli/commands/converge.js';
import { createLogger } from '../../server/log.js';
import type { LifecycleEvent } from '../../server/model/lifecycle.js';
import type { ResolvedNode } from '../../server/model/inventory.js';
import { ConvergenceService, type ConvergenceDeps } from '../../server/services/convergence.js';
import type { Timers } from '../../server/services/convergence-queue.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { NodeLocks } from '../../server/services/node-locks.js';
import type { NodeReadinessReport } from '../../server/services/readiness-service.js';
import type { NodeRunReport } from '../../server/services/state-service.js';
import { convergeRoutes } from '../../server/net/http/converge-routes.js';
import { errorHandler } from '../../server/net/http/errors.js';
import { openStore } from '../../server/store/index.js';
import type { ObservedStore } from '../../server/store/types.js';

/**
 * The convergence service over a real SQLite store and a real inventory file, with the state and readiness
 * services replaced by scripted fakes (to inject unreachable nodes and failing states at will) and timers driven
 * by hand (backoff without waiting).
 */

class ManualTimers implements Timers {
  private t = 0;
  private seq = 0;
  readonly pending = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.pending.set(++this.seq, { at: this.t + ms, fn });
    return this.seq;
  }
  clearTimeout(h: unknown): void {
    this.pending.delete(h as number);
  }
  /** Fires the earliest pending timer (jumping the clock to it). */
  fireNext(): boolean {
    const next = [...this.pending].sort((a, b) => a[1].at - b[1].at)[0];
    if (!next) return false;
    this.pending.delete(next[0]);
    this.t = next[1].at;
    next[1].fn();
    return true;
  }
}

const log = createLogger('silent');
const counts = { changed: 0, unchanged: 0, failed: 0, wouldChange: 0, total: 0 };

type Script = (node: ResolvedNode, call: number) => Partial<NodeRunReport>;

/** A StateService stand-in: each call's report comes from the script; calls are recorded. */
function fakeStates(script: Script) {
  const calls: Array<{ node: string; mode: string; roles: string[] }> = [];
  const hardwareListeners: Array<(node: string) => void> = [];
  return {
    calls,
    service: {
      async run(nodes: readonly ResolvedNode[], mode: 'apply' | 'test'): Promise<NodeRunReport[]> {
        return nodes.map((node) => {
          calls.push({ node: node.name, mode, roles: [...node.roles] });
          const n = calls.filter((c) => c.node === node.name).length;
          const report: NodeRunReport = { node: node.name, runId: `run-${node.name}-${n}`, mode, result: 'changed', counts, durationMs: 1, states: [], ...script(node, n) };
          // As StateService does: an apply that stored new hardware tells its listeners, whoever asked for it.
          if (report.hardwareChanged) for (const l of hardwareListeners) l(node.name);
          return report;
        });
      },
      onHardwareChange(listener: (node: string) => void) {
        hardwareListeners.push(listener);
      },
    },
  };
}

/** A ReadinessService stand-in that moves the lifecycle the way the real one does for a passing node. */
function fakeReadiness(store: ObservedStore) {
  const calls: string[] = [];
  return {
    calls,
    service: {
      async run(nodes: readonly ResolvedNode[]): Promise<NodeReadinessReport[]> {
        const out: NodeReadinessReport[] = [];
        for (const node of nodes) {
          calls.push(node.name);
          await store.recordEvent({ node: node.name, event: { type: 'ready' } });
          out.push({ node: node.name, runId: `ready-${node.name}`, ready: true, state: 'ready', failing: [], summary: '', evidence: [], startedAt: 0, durationMs: 1 });
        }
        return out;
      },
    },
  };
}

const refused: Partial<NodeRunReport> = { result: 'failed', error: { code: 'STATE_TRANSPORT', message: 'cannot connect: ECONNREFUSED' } };
const stateFailed: Partial<NodeRunReport> = {
  result: 'failed',
  states: [{ key: 'k', id: '/etc/app.conf', name: '/etc/app.conf', sls: 'app', module: 'file', fun: 'managed', result: false, changes: {}, comment: 'source missing', durationMs: 1, startedAt: 0, runNum: 1 }],
};

const INVENTORY = (webRoles: string) => `cluster: { name: c }
groups:
  web: { roles: [${webRoles}] }
  db: { roles: [base, db] }
nodes:
  - { name: web1, mac: "02:00:00:00:00:01", ip: 10.9.0.1, group: web }
  - { name: web2, mac: "02:00:00:00:00:02", ip: 10.9.0.2, group: web }
  - { name: db1, mac: "02:00:00:00:00:03", ip: 10.9.0.3, group: db }
  - { name: stray, mac: "02:00:00:00:00:04", ip: 10.9.0.4, group: db }
`;

let dir: string;
let store: ObservedStore;
let inventory: InventoryService;
let services: ConvergenceService[];

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rackseed-convergence-unit-'));
  store = await openStore({ kind: 'sqlite', path: path.join(dir, 'rackseed.db') });
  await store.migrate();
  writeFileSync(path.join(dir, 'inventory.yaml'), INVENTORY('base, web'));
  inventory = new InventoryService(path.join(dir, 'inventory.yaml'), log);
  services = [];
});

afterEach(async () => {
  for (const s of services) await s.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const TO_INSTALLED: LifecycleEvent[] = [{ type: 'assigned', group: 'x' }, { type: 'provision_started' }, { type: 'installed' }];
const TO_READY: LifecycleEvent[] = [...TO_INSTALLED, { type: 'configure_started' }, { type: 'ready' }];

async function put(node: string, events: LifecycleEvent[]): Promise<void> {
  for (const event of events) {
    const r = await store.recordEvent({ node, event });
    if (!r.ok) throw new Error(r.error);
  }
}

async function trail(node: string): Promise<string[]> {
  return (await store.listEvents({ node })).map((e) => (e.event.type === 'failed' ? `failed[${e.event.stage}]: ${e.event.reason}` : e.event.type));
}

function service(script: Script, over: Omit<Partial<ConvergenceDeps>, 'settings'> & { settings?: Partial<ConvergenceDeps['settings']> } = {}) {
  const states = fakeStates(script);
  const readiness = fakeReadiness(store);
  const timers = new ManualTimers();
  const { settings, ...rest } = over;
  const s = new ConvergenceService({
    inventory,
    store,
    states: states.service,
    readiness: readiness.service,
    settings: { enabled: true, probeIntervalMs: 30_000, maxAttempts: 3, backoffBaseMs: 1_000, backoffMaxMs: 8_000, concurrency: 4, sshPort: 22, ...settings },
    log,
    timers,
    random: () => 0.5,
    probe: async () => false,
    probeJoinTarget: async () => false,
    ...rest,
  });
  services.push(s);
  return { s, states, readiness, timers };
}

/** Writes the inventory (when given), reloads it as SIGHUP would, and waits for the convergences it set off. */
async function reloadInventory(s: ConvergenceService, text?: string): Promise<void> {
  if (text !== undefined) writeFileSync(inventory.file, text);
  await inventory.reload();
  await new Promise((r) => setImmediate(r));
  await s.whenIdle();
}

/** Lets the queue run whatever is due, firing retry timers, until nothing is pending. */
async function drain(s: ConvergenceService, timers: ManualTimers): Promise<void> {
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setImmediate(r));
    if (s.status().length === 0) return;
    if (s.status().every((x) => x.phase === 'waiting')) timers.fireNext();
  }
  throw new Error(`still busy: ${JSON.stringify(s.status())}`);
}

describe('convergence of one node', () => {
  it('installed -> configuring -> apply -> readiness -> ready, with no retry', async () => {
    await put('web1', TO_INSTALLED);
    const { s, states, readiness, timers } = service(() => ({ result: 'changed' }));
    await s.start();
    expect(await s.request('web1', 'booted')).toEqual({ status: 'queued' });
    await s.whenIdle();
    expect(states.calls).toEqual([{ node: 'web1', mode: 'apply', roles: ['base', 'web'] }]);
    expect(readiness.calls).toEqual(['web1']);
    expect(await trail('web1')).toEqual(['assigned', 'provision_started', 'installed', 'configure_started', 'ready']);
    // Only the probe timer is left: no retry was scheduled.
    expect(timers.pending.size).toBe(1);
  });

  it('hardware that appeared during the apply (a driver installed): applied once more, then readiness', async () => {
    await put('web1', TO_INSTALLED);
    // Every apply says so: the second is not chased by a third.
    const { s, states, readiness } = service(() => ({ result: 'changed', hardwareChanged: true, hardwareChangedDuringRun: true }));
    await s.start();
    await s.request('web1', 'booted');
    await s.whenIdle();
    expect(states.calls.filter((c) => c.node === 'web1').map((c) => c.mode)).toEqual(['apply', 'apply']);
    expect(readiness.calls).toEqual(['web1']);
    expect((await store.getNode('web1'))?.state).toBe('ready');
  });

  it('a failed state: failed with stage states, the first failing state and the run; no readiness, no retry', async () => {
    await put('web1', TO_INSTALLED);
    const { s, states, readiness, timers } = service(() => stateFailed);
    await s.start();
    await s.request('web1', 'booted');
    await drain(s, timers);
    expect(states.calls).toHaveLength(1);
    expect(readiness.calls).toEqual([]);
    expect((await trail('web1')).slice(3)).toEqual(['configure_started', 'failed[states]: states: 1 failed: /etc/app.conf: source missing (run run-web1-1)']);
    expect((await store.getNode('web1'))?.state).toBe('failed');
    // The probe only looks at installed nodes: a failed one is not picked up again by itself.
    timers.fireNext();
    await drain(s, timers);
    expect(states.calls).toHaveLength(1);
  });

  it('unreachable: retried with backoff, converges when the node answers', async () => {
    await put('web1', TO_INSTALLED);
    const { s, states, timers } = service((_node, call) => (call < 3 ? refused : { result: 'changed' }), { settings: { maxAttempts: 5 } });
    await s.start();
    timers.pending.clear(); // no probe rounds in this test
    await s.request('web1', 'booted');
    await new Promise((r) => setImmediate(r));
    await drain(s, timers);
    expect(states.calls).toHaveLength(3);
    expect((await trail('web1')).slice(3)).toEqual(['configure_started', 'ready']);
  });

  it('unreachable through every attempt: failed with stage states after maxAttempts, then left alone', async () => {
    await put('web1', TO_INSTALLED);
    const { s, states, readiness, timers } = service(() => refused, { settings: { maxAttempts: 3 } });
    await s.start();
    timers.pending.clear();
    await s.request('web1', 'booted');
    await drain(s, timers);
    expect(states.calls).toHaveLength(3);
    expect(readiness.calls).toEqual([]);
    expect((await trail('web1')).slice(3)).toEqual([
      'configure_started',
      'failed[states]: states: not reachable after 3 attempt(s): STATE_TRANSPORT: cannot connect: ECONNREFUSED (run run-web1-3)',
    ]);
    expect(timers.pending.size).toBe(0);
  });

  it('refuses what it must not touch: unknown, still provisioning, not pinned; and nothing before start or when disabled', async () => {
    await put('web1', [{ type: 'assigned', group: 'web' }, { type: 'provision_started' }]);
    await put('db1', TO_INSTALLED);
    const { s, states } = service(() => ({}), { reachable: (n) => n.name !== 'db1' });
    expect((await s.request('web2', 'booted')).status).toBe('not-started');
    await s.start();
    expect((await s.request('ghost', 'booted')).status).toBe('unknown-node');
    expect((await s.request('web1', 'booted')).status).toBe('not-installed');
    expect((await s.request('web2', 'booted')).status).toBe('not-installed');
    expect((await s.request('db1', 'booted')).status).toBe('unreachable');
    const off = service(() => ({}), { settings: { enabled: false } });
    await off.s.start();
    await put('stray', TO_INSTALLED);
    expect((await off.s.request('stray', 'booted')).status).toBe('disabled');
    await s.whenIdle();
    expect(states.calls).toEqual([]);
    expect(off.states.calls).toEqual([]);
  });

  it('a node reimaged and reinstalled during its states run does not get the old run\'s failure', async () => {
    await put('web1', TO_INSTALLED);
    const report = (node: ResolvedNode): NodeRunReport => ({ node: node.name, runId: 'run-old-os', mode: 'apply', counts, durationMs: 1, ...stateFailed }) as NodeRunReport;
    const { s, timers } = service(() => ({}), {
      states: {
        // The reimage's reboot cuts the run short; by the time it returns, the node has installed again.
        run: async (nodes) => {
          await put('web1', [{ type: 'reimage_requested' }, { type: 'provision_started' }, { type: 'installed' }]);
          return nodes.map(report);
        },
        onHardwareChange: () => undefined,
      },
    });
    await s.start();
    await s.request('web1', 'booted');
    await drain(s, timers);
    expect(await store.getNode('web1')).toMatchObject({ state: 'installed' });
    expect((await trail('web1')).slice(3)).toEqual(['configure_started', 'reimage_requested', 'provision_started', 'installed']);
  });

  it('leaves a node whose install failed alone (its disk is not to be configured or booted), but converges one that failed after install', async () => {
    await put('web1', [{ type: 'assigned', group: 'web' }, { type: 'provision_started' }, { type: 'failed', reason: 'sha256 mismatch', stage: 'verify' }]);
    await put('web2', [...TO_READY, { type: 'failed', reason: 'nginx down', stage: 'readiness' }]);
    const { s, states, timers } = service(() => ({}));
    await s.start();
    const refused = await s.request('web1', 'booted');
    expect(refused).toEqual({ status: 'not-installed', message: 'node web1 failed to install (stage verify): reimage it; it is converged once it is installed' });
    expect((await s.request('web2', 'booted')).status).toBe('queued');
    await drain(s, timers);
    expect(states.calls.map((c) => c.node)).toEqual(['web2']);
    expect(await trail('web1')).toEqual(['assigned', 'provision_started', 'failed[verify]: sha256 mismatch']);
  });
});

describe('convergence triggers', () => {
  it('the probe converges installed, pinned nodes whose SSH port answers, and no others', async () => {
    await put('web1', TO_INSTALLED); // answers
    await put('web2', TO_INSTALLED); // does not answer yet
    await put('db1', TO_READY); // not installed: never probed
    await put('stray', TO_INSTALLED); // not pinned: never probed
    const probed: string[] = [];
    const { s, states, timers } = service(() => ({ result: 'success' }), {
      reachable: (n) => n.name !== 'stray',
      probe: async (n) => {
        probed.push(n.name);
        return n.name === 'web1';
      },
    });
    await s.start();
    expect(timers.fireNext()).toBe(true);
    await drain(s, timers);
    expect(probed.sort()).toEqual(['web1', 'web2']);
    expect(states.calls.map((c) => c.node)).toEqual(['web1']);
    expect((await store.getNode('web1'))?.state).toBe('ready');
    expect((await store.getNode('web2'))?.state).toBe('installed');
  });

  it('a role change re-converges the ready/failed nodes it touches, with the new roles', async () => {
    await put('web1', TO_READY);
    await put('web2', [...TO_INSTALLED, { type: 'failed', reason: 'x', stage: 'readiness' }]);
    await put('db1', TO_READY);
    const { s, states } = service(() => ({ result: 'changed' }));
    await s.start();
    await reloadInventory(s, INVENTORY('base, web, cache'));
    expect(states.calls.map((c) => `${c.node}:${c.roles.join(',')}`).sort()).toEqual(['web1:base,web,cache', 'web2:base,web,cache']);
    expect((await trail('web1')).slice(-2)).toEqual(['configure_started', 'ready']);
    expect((await store.getNode('web2'))?.state).toBe('ready');
    // A reload that changes nothing about roles triggers nothing.
    await reloadInventory(s);
    expect(states.calls).toHaveLength(2);
  });

  it('a role change leaves a node with a pending reimage alone: it installs with the new roles (reimage --group)', async () => {
    await put('web1', [...TO_READY, { type: 'reimage_requested' }]);
    await put('web2', TO_READY);
    const { s, states } = service(() => ({ result: 'changed' }));
    await s.start();
    await reloadInventory(s, INVENTORY('base, web, cache'));
    expect(states.calls.map((c) => c.node)).toEqual(['web2']);
    expect(await store.getNode('web1')).toMatchObject({ state: 'ready', reimageRequested: true });
    // Nor does any other trigger (a first-boot callback, a backoff retry) converge its old OS.
    await s.request('web1', 'booted');
    await s.whenIdle();
    expect(states.calls.map((c) => c.node)).toEqual(['web2']);
    expect(await store.getNode('web1')).toMatchObject({ state: 'ready', reimageRequested: true });
  });

  it('a node joining or leaving slurm-compute re-converges the other Slurm nodes too (their slurm.conf lists it)', async () => {
    const slurm = (spareGroup: string, c1Group: string) =>
      `cluster: { name: c }\ngroups:\n  head: { roles: [base, slurm-controller] }\n  compute: { roles: [base, slurm-compute] }\n  plain: { roles: [base] }\nnodes:\n` +
      `  - { name: ctl, mac: "02:00:00:00:03:01", ip: 10.9.1.1, group: head }\n  - { name: c1, mac: "02:00:00:00:03:02", ip: 10.9.1.2, group: ${c1Group} }\n  - { name: spare, mac: "02:00:00:00:03:03", ip: 10.9.1.3, group: ${spareGroup} }\n`;
    writeFileSync(path.join(dir, 'inventory.yaml'), slurm('plain', 'compute'));
    await inventory.reload();
    for (const n of ['ctl', 'c1', 'spare']) await put(n, TO_READY);
    const { s, states } = service(() => ({ result: 'changed' }));
    await s.start();
    // Before: only spare, whose roles changed; the controller's slurm.conf never listed it.
    await reloadInventory(s, slurm('compute', 'compute'));
    expect(states.calls.map((c) => `${c.node}:${c.roles.join(',')}`).sort()).toEqual(['c1:base,slurm-compute', 'ctl:base,slurm-controller', 'spare:base,slurm-compute']);
    states.calls.length = 0;
    await reloadInventory(s, slurm('compute', 'plain'));
    expect(states.calls.map((c) => c.node).sort()).toEqual(['c1', 'ctl', 'spare']);
  });

  it('a compute node\'s new hardware re-converges the other Slurm nodes, after a convergence or an operator\'s apply', async () => {
    writeFileSync(path.join(dir, 'inventory.yaml'), INVENTORY('base, slurm-compute'));
    await inventory.reload();
    for (const n of ['web1', 'web2', 'db1']) await put(n, TO_READY);
    const { s, states, timers } = service((node, call) => (node.name === 'web1' && call === 1 ? { hardwareChanged: true } : {}));
    await s.start();
    expect((await s.request('web1', 'booted')).status).toBe('queued');
    await drain(s, timers);
    // web2 renders slurm.conf with web1's CPUs; db1 has no Slurm role.
    expect(states.calls.map((c) => c.node)).toEqual(['web1', 'web2']);

    // `rackseed state apply web2` finds web2's hardware changed: web1 renders it again, through convergence.
    const manual = fakeStates((node, call) => (node.name === 'web2' && call === 1 ? { hardwareChanged: true } : {}));
    const wired = service(() => ({}), { states: { run: manual.service.run, onHardwareChange: (l) => manual.service.onHardwareChange(l) } });
    await wired.s.start();
    await manual.service.run([inventory.inventory.nodes.get('web2')!], 'apply');
    await drain(wired.s, wired.timers);
    expect(wired.states.calls).toEqual([]);
    expect(manual.calls.map((c) => c.node)).toEqual(['web2', 'web1']);
  });

  it('a node left configuring with nothing queued (a crash, a store that failed) is resumed by the second probe round', async () => {
    const { s, states } = service(() => ({ result: 'success' }));
    await s.start();
    await s.whenIdle();
    // Left configuring after start, as a convergence whose last write failed leaves it.
    await put('db1', [...TO_INSTALLED, { type: 'configure_started' }]);
    await s.probeInstalled();
    await s.whenIdle();
    expect(states.calls).toEqual([]);
    await s.probeInstalled();
    await s.whenIdle();
    expect(states.calls.map((c) => c.node)).toEqual(['db1']);
    expect((await store.getNode('db1'))?.state).toBe('ready');
  });

  it('a node configuring while its lock is held (a long readiness check of a node failed in readiness) is no orphan', async () => {
    const locks = new NodeLocks();
    const { s, states } = service(() => ({ result: 'success' }), { locks });
    await s.start();
    await s.whenIdle();
    await put('db1', [...TO_INSTALLED, { type: 'configure_started' }]);
    const release = await locks.acquire('db1');
    for (let round = 0; round < 3; round++) {
      await s.probeInstalled();
      await s.whenIdle();
    }
    expect(states.calls).toEqual([]);
    release();
  });

  it('resumes, at start, a convergence a restart interrupted (node left configuring)', async () => {
    await put('db1', [...TO_INSTALLED, { type: 'configure_started' }]);
    const { s, states } = service(() => ({ result: 'success' }));
    await s.start();
    await s.whenIdle();
    expect(states.calls.map((c) => c.node)).toEqual(['db1']);
    expect((await store.getNode('db1'))?.state).toBe('ready');
  });
});

describe('K3s nodes that failed waiting for the server they join', () => {
  const K3S_INVENTORY = `cluster: { name: c }
groups:
  k3sctl: { roles: [base, k3s-server] }
  k3s: { roles: [base, k3s-agent] }
  web: { roles: [base, web] }
nodes:
  - { name: s1, mac: "02:00:00:00:00:11", ip: 10.9.0.11, group: k3sctl }
  - { name: a1, mac: "02:00:00:00:00:12", ip: 10.9.0.12, group: k3s }
  - { name: a2, mac: "02:00:00:00:00:13", ip: 10.9.0.13, group: k3s }
  - { name: a3, mac: "02:00:00:00:00:14", ip: 10.9.0.14, group: k3s }
  - { name: web1, mac: "02:00:00:00:00:01", ip: 10.9.0.1, group: web }
`;
  const waited = (address: string) =>
    `states: 3 failed: k3s-join-server: exit 1: K3s server ${address} does not answer yet: k3s-agent is started and keeps trying to join by itself; rackseed converges this node again once ${address} answers its probe (run r)`;
  const failedWith = (reason: string): LifecycleEvent[] => [...TO_INSTALLED, { type: 'configure_started' }, { type: 'failed', reason, stage: 'states' }];

  /** A service whose join-target probe answers for the addresses in `up` (changed at will) and records what it probed. */
  function k3sService(script: Script, over: Omit<Partial<ConvergenceDeps>, 'settings'> = {}) {
    const up = new Set<string>();
    const probed: string[] = [];
    const made = service(script, {
      probeJoinTarget: async ({ host, port }) => {
        probed.push(`${host}:${port}`);
        return up.has(`${host}:${port}`);
      },
      ...over,
    });
    return { ...made, up, probed };
  }

  beforeEach(async () => {
    writeFileSync(inventory.file, K3S_INVENTORY);
    await inventory.reload();
  });

  it('the probe round converges them again once the address they waited for answers here: only those, once per round', async () => {
    // s1 is ready in rackseed but down (a reboot): nothing turns ready, yet the agents that failed meanwhile are
    // tried again as soon as its address answers.
    await put('s1', TO_READY);
    await put('a1', failedWith(waited('10.9.0.11:6443')));
    await put('a2', failedWith(waited('10.9.0.11:6443')));
    await put('a3', TO_READY);
    await put('web1', failedWith('states: 1 failed: x: exit 1: K3s is not what failed here'));
    const { s, states, up, probed } = k3sService(() => ({ result: 'changed' }));
    await s.start();
    await s.whenIdle();

    await s.probeInstalled();
    await s.whenIdle();
    expect(states.calls).toEqual([]);
    // One probe per address, not per node.
    expect(probed).toEqual(['10.9.0.11:6443']);

    up.add('10.9.0.11:6443');
    await s.probeInstalled();
    await s.whenIdle();
    // Their own k3s-agent joined by itself meanwhile: ready now. The ready one and the other failure are left alone.
    expect(states.calls.map((c) => c.node).sort()).toEqual(['a1', 'a2']);
    expect((await trail('a1')).slice(-2)).toEqual(['configure_started', 'ready']);
    expect((await store.getNode('web1'))?.state).toBe('failed');

    // Nothing waits any more: a later round converges nobody.
    await s.probeInstalled();
    await s.whenIdle();
    expect(states.calls.map((c) => c.node).sort()).toEqual(['a1', 'a2']);
  });

  it('never probes an address that is not one of the inventory\'s K3s servers (a node writes its own reason)', async () => {
    // a1's reason names an address of the node's choosing (its stderr); web1 is no K3s node at all.
    await put('a1', failedWith(waited('192.0.2.7:22')));
    await put('a2', failedWith(waited('s1:6443')));
    await put('web1', failedWith(waited('10.9.0.11:6443')));
    const { s, states, up, probed } = k3sService(() => ({ result: 'changed' }));
    up.add('192.0.2.7:22');
    up.add('s1:6443');
    up.add('10.9.0.11:6443');
    await s.start();
    await s.probeInstalled();
    await s.whenIdle();
    expect(probed).toEqual(['s1:6443']);
    expect(states.calls.map((c) => c.node)).toEqual(['a2']);
  });

  it("probes the host of a k3s.server_url set only in the node's pillar file, where its states read it", async () => {
    // a1 joins through a VIP named only in <pillar_dir>/nodes/a1.yaml; a2 has no such file, so the VIP is not its.
    const pillarDir = path.join(dir, 'pillar-k3s');
    mkdirSync(path.join(pillarDir, 'nodes'), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(pillarDir, 'nodes', 'a1.yaml'), 'k3s:\n  server_url: "https://k3s-vip.lab:6443"\n', { mode: 0o600 });
    await put('a1', failedWith(waited('k3s-vip.lab:6443')));
    await put('a2', failedWith(waited('k3s-vip.lab:6443')));
    const { s, states, up, probed } = k3sService(() => ({ result: 'changed' }), {});
    const withPillar = service(() => ({ result: 'changed' }), {
      settings: { pillarDir },
      probeJoinTarget: async ({ host, port }) => {
        probed.push(`${host}:${port}`);
        return up.has(`${host}:${port}`);
      },
    });
    up.add('k3s-vip.lab:6443');
    // Without the pillar directory (as before): the VIP is no address a1 may wait for, nothing is probed.
    await s.start();
    await s.probeInstalled();
    await s.whenIdle();
    expect(probed).toEqual([]);
    await s.close();
    await withPillar.s.start();
    await withPillar.s.probeInstalled();
    await withPillar.s.whenIdle();
    expect(probed).toEqual(['k3s-vip.lab:6443']);
    expect(withPillar.states.calls.map((c) => c.node)).toEqual(['a1']);
    expect(states.calls).toEqual([]);
  });

  it('a node that fails so again is tried again in the next round, not within one', async () => {
    await put('a1', failedWith(waited('10.9.0.11:6443')));
    const again = { result: 'failed' as const, states: [{ key: 'k', id: 'k3s-join-server', name: 'x', sls: 'k3s.agent', module: 'cmd', fun: 'run', result: false, changes: { retcode: 1, stderr: 'K3s server 10.9.0.11:6443 does not answer yet: k3s-agent is started' }, comment: 'Command "x" failed with exit code 1', durationMs: 1, startedAt: 0, runNum: 1 }] };
    const { s, states, up } = k3sService(() => again);
    up.add('10.9.0.11:6443');
    await s.start();
    await s.probeInstalled();
    await s.whenIdle();
    expect(states.calls.map((c) => c.node)).toEqual(['a1']);
    expect((await store.getNode('a1'))?.reason).toBe('states: 1 failed: k3s-join-server: exit 1: K3s server 10.9.0.11:6443 does not answer yet: k3s-agent is started (run run-a1-1)');
    await s.probeInstalled();
    await s.whenIdle();
    expect(states.calls.map((c) => c.node)).toEqual(['a1', 'a1']);
  });

  it('with several servers, only the one that manages the node converges it; the others do not even probe for it', async () => {
    // a1 was installed by server B (its host key is pinned there); server A is the one that saw s1 come back.
    await put('a1', failedWith(waited('10.9.0.11:6443')));
    const a = k3sService(() => ({ result: 'changed' }), { reachable: (n) => n.name !== 'a1' });
    const b = k3sService(() => ({ result: 'changed' }), { reachable: (n) => n.name === 'a1' });
    a.up.add('10.9.0.11:6443');
    b.up.add('10.9.0.11:6443');
    await a.s.start();
    await b.s.start();
    await a.s.probeInstalled();
    await a.s.whenIdle();
    expect(a.probed).toEqual([]);
    expect(a.states.calls).toEqual([]);
    await b.s.probeInstalled();
    await b.s.whenIdle();
    expect(b.states.calls.map((c) => c.node)).toEqual(['a1']);
    expect((await store.getNode('a1'))?.state).toBe('ready');
  });

  it('a node whose reimage is pending, or one failed in readiness, is not converged for it', async () => {
    await put('a1', [...failedWith(waited('10.9.0.11:6443')), { type: 'reimage_requested' }]);
    await put('a2', [...TO_INSTALLED, { type: 'configure_started' }, { type: 'failed', reason: waited('10.9.0.11:6443'), stage: 'readiness' }]);
    const { s, states, up, probed } = k3sService(() => ({ result: 'changed' }));
    up.add('10.9.0.11:6443');
    await s.start();
    await s.probeInstalled();
    await s.whenIdle();
    expect(probed).toEqual([]);
    expect(states.calls).toEqual([]);
  });
});

describe('POST /converge (rackseed converge)', () => {
  async function postConverge(s: ConvergenceService, body: unknown): Promise<{ status: number; lines: Array<Record<string, unknown>> }> {
    const app = express();
    app.use(convergeRoutes({ inventory, convergence: s, store, log, pollMs: 5 }));
    app.use(errorHandler(log));
    const server = await new Promise<Server>((resolve) => {
      const h = app.listen(0, '127.0.0.1', () => resolve(h));
    });
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/converge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, lines: res.status === 200 ? text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) : [JSON.parse(text) as Record<string, unknown>] };
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  it('converges a node whose states failed (states, then readiness) and waits for the outcome; refuses one never installed', async () => {
    await put('web1', [...TO_INSTALLED, { type: 'configure_started' }, { type: 'failed', reason: 'states: 1 failed', stage: 'states' }]);
    await put('stray', [{ type: 'assigned', group: 'db' }]);
    const { s, states } = service(() => ({ result: 'changed' }));
    await s.start();
    const { status, lines } = await postConverge(s, { targets: ['web1', 'stray'], wait: true });
    expect(status).toBe(200);
    expect(lines).toEqual([
      { type: 'requested', node: 'web1', status: 'queued' },
      { type: 'requested', node: 'stray', status: 'not-installed', message: 'node stray is assigned: it is converged once it is installed' },
      { type: 'node', node: 'web1', state: 'ready' },
      { type: 'summary', nodes: 2, queued: 1, refused: ['stray'], ready: 1, notReady: [] },
    ]);
    expect(states.calls.map((c) => `${c.node}:${c.mode}`)).toEqual(['web1:apply']);
    expect((await trail('web1')).slice(-3)).toEqual(['failed[states]: states: 1 failed', 'configure_started', 'ready']);
    expect(formatConverge(lines.filter((l) => l.type === 'requested') as never, lines.filter((l) => l.type === 'node') as never, lines.at(-1) as never)).toMatch(
      /web1\s+│\s+ready\s+│[\s\S]*stray\s+│\s+refused \(not-installed\)\s+│ node stray is assigned[\s\S]*1 of 2 node\(s\) converging; 1 ready, 0 not; refused: stray\n$/,
    );
    // On a terminal, each node as its convergence ends (a reason from the node is made printable).
    expect(convergeProgressLine({ type: 'node', node: 'web1', state: 'ready' })).toBe('  web1: ready\n');
    expect(convergeProgressLine({ type: 'node', node: 'web2', state: 'failed', reason: 'states: 1 failed\u001b[2J' })).toBe('  web2: failed (states: 1 failed\\u001b[2J)\n');
  });

  it("runs on an operator's request where automatic convergence is off; a bad body is a 400", async () => {
    await put('db1', TO_READY);
    const { s, states } = service(() => ({ result: 'success' }), { settings: { enabled: false } });
    await s.start();
    expect((await s.request('db1', 'booted')).status).toBe('disabled');
    const { lines } = await postConverge(s, { targets: ['db1'] });
    expect(lines.at(-1)).toEqual({ type: 'summary', nodes: 1, queued: 1, refused: [] });
    await s.whenIdle();
    expect(states.calls.map((c) => c.node)).toEqual(['db1']);
    expect((await postConverge(s, { targets: [] })).status).toBe(400);
    expect((await postConverge(s, { targets: ['db1'], wait: 'yes' })).status).toBe(400);
  });
});

describe('role changes made while the server was down, or hidden by a cancelled reimage --group', () => {
  async function applied(node: string, group: string, roles: string[], startedAt: number): Promise<void> {
    await store.createRun({ id: `apply-${node}-${startedAt}`, node, kind: 'apply', result: 'success', startedAt, summary: { mode: 'apply', configuredAs: { group, roles } }, details: [] });
  }

  it('at start, re-converges the nodes whose last apply configured other roles than the inventory has now', async () => {
    for (const n of ['web1', 'web2', 'db1']) await put(n, TO_READY);
    await applied('web1', 'web', ['base', 'web'], 1);
    await applied('web2', 'web', ['base', 'web'], 1);
    await applied('web2', 'web', ['base', 'web', 'cache'], 2);
    // db1 has no apply run with configuredAs (an older version's run): left alone.
    await store.createRun({ id: 'old-db1', node: 'db1', kind: 'apply', result: 'success', startedAt: 1, summary: { mode: 'apply' }, details: [] });
    writeFileSync(inventory.file, INVENTORY('base, web, cache'));
    await inventory.reload();
    const { s, states } = service(() => ({ result: 'success' }));
    await s.start();
    await s.whenIdle();
    expect(states.calls.map((c) => `${c.node}:${c.roles.join(',')}`)).toEqual(['web1:base,web,cache']);
  });

  it('an apply that never recorded its end (left running, or closed as abandoned) does not hide the one before it', async () => {
    for (const n of ['web1', 'web2']) await put(n, TO_READY);
    await applied('web1', 'web', ['base', 'web'], 1);
    await store.createRun({ id: 'stuck', node: 'web1', kind: 'apply', result: 'running', startedAt: 2, summary: { server: 'rs1' }, details: [] });
    await applied('web2', 'web', ['base', 'web'], 1);
    await store.createRun({ id: 'closed', node: 'web2', kind: 'apply', result: 'running', startedAt: 2, summary: { server: 'rs1' }, details: [] });
    await store.abandonRuns({ server: 'rs1', before: 3, finishedAt: 3, error: { code: 'RUN_ABANDONED', message: 'x' } });
    writeFileSync(inventory.file, INVENTORY('base, web, cache'));
    await inventory.reload();
    const { s, states } = service(() => ({ result: 'success' }));
    await s.start();
    await s.whenIdle();
    expect(states.calls.map((c) => `${c.node}:${c.roles.join(',')}`).sort()).toEqual(['web1:base,web,cache', 'web2:base,web,cache']);
  });

  it('a cancelled reimage of a node moved into another group converges it with that group (the cancel route asks)', async () => {
    await put('web1', TO_READY);
    await put('web2', TO_READY);
    const { s, states } = service(() => ({ result: 'success' }));
    await s.start();
    await s.whenIdle();
    expect(states.calls).toEqual([]);
    // web1 ran as a db node when reimage --group web moved it; the reimage was then cancelled. web2 is as configured.
    await put('web1', [{ type: 'reimage_requested' }, { type: 'reimage_cancelled' }]);
    await applied('web1', 'db', ['base', 'db'], 1);
    await applied('web2', 'web', ['base', 'web'], 1);
    await s.reconvergeIfConfiguredOtherwise(['web1', 'web2']);
    await s.whenIdle();
    expect(states.calls.map((c) => `${c.node}:${c.roles.join(',')}`)).toEqual(['web1:base,web']);
  });
});
