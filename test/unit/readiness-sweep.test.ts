import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseInventory } from '../../server/inventory/index.js';
import { createLogger } from '../../server/log.js';
import type { LifecycleEvent } from '../../server/model/lifecycle.js';
import type { ResolvedNode } from '../../server/model/inventory.js';
import type { NodeReadinessReport } from '../../server/services/readiness-service.js';
import { ReadinessSweep } from '../../server/services/readiness-sweep.js';
import { openStore } from '../../server/store/index.js';
import type { ObservedStore } from '../../server/store/types.js';
import { waitFor } from '../support/wait.js';
import { FILE, withNodes } from '../fixtures/inventory/inventories.js';

const inv = parseInventory(withNodes(['ready1', 'ready2', 'rfail', 'sfail', 'ifail', 'inst', 'prov', 'conf'].map((n) => `  - { name: ${n}, group: gpu }\n`).join('')), FILE);

const INSTALLED: LifecycleEvent[] = [{ type: 'assigned', group: 'gpu' }, { type: 'provision_started' }, { type: 'installed' }];
const TRAILS: Record<string, LifecycleEvent[]> = {
  ready1: [...INSTALLED, { type: 'configure_started' }, { type: 'ready' }],
  ready2: [...INSTALLED, { type: 'configure_started' }, { type: 'ready' }],
  rfail: [...INSTALLED, { type: 'configure_started' }, { type: 'failed', reason: 'readiness: base.hosts', stage: 'readiness' }],
  sfail: [...INSTALLED, { type: 'configure_started' }, { type: 'failed', reason: 'states: 1 failed', stage: 'states' }],
  ifail: [{ type: 'assigned', group: 'gpu' }, { type: 'provision_started' }, { type: 'failed', reason: 'download', stage: 'download' }],
  inst: INSTALLED,
  prov: [{ type: 'assigned', group: 'gpu' }, { type: 'provision_started' }],
  conf: [...INSTALLED, { type: 'configure_started' }],
};

describe('ReadinessSweep', () => {
  let dir: string;
  let store: ObservedStore;
  const runs: string[][] = [];
  let gate: Promise<void> | undefined;
  const readiness = {
    run: async (nodes: readonly ResolvedNode[]): Promise<NodeReadinessReport[]> => {
      runs.push(nodes.map((n) => n.name));
      if (gate) await gate;
      return nodes.map((n) => ({ node: n.name, runId: 'r', ready: true, failing: [], summary: '', evidence: [], startedAt: 0, durationMs: 0 }));
    },
  };

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rackseed-sweep-'));
    store = await openStore({ kind: 'sqlite', path: path.join(dir, 'rackseed.db') });
    await store.migrate();
    for (const [node, events] of Object.entries(TRAILS)) {
      for (const event of events) {
        const r = await store.recordEvent({ node, event });
        if (!r.ok) throw new Error(`${node} ${event.type}: ${r.error}`);
      }
    }
    runs.length = 0;
    gate = undefined;
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const sweep = (intervalMs = 60_000) => new ReadinessSweep({ inventory: { inventory: inv }, store, readiness, intervalMs, log: createLogger('silent') });

  it('checks the ready nodes and those that failed only their readiness; installs, states failures and nodes being configured are not its business', async () => {
    expect(await sweep().sweepNow()).toBe(3);
    expect(runs).toEqual([['ready1', 'ready2', 'rfail']]);
  });

  it("leaves nodes this server cannot reach (another server's, no pinned key) and nodes about to be reimaged", async () => {
    const [r] = await store.recordEvents([{ node: 'ready2', event: { type: 'reimage_requested' } }]);
    expect(r?.ok).toBe(true);
    const s = new ReadinessSweep({ inventory: { inventory: inv }, store, readiness, intervalMs: 60_000, log: createLogger('silent'), reachable: (n) => n.name !== 'rfail' });
    expect(await s.sweepNow()).toBe(1);
    expect(runs).toEqual([['ready1']]);
  });

  it('does not start a second sweep while one is under way', async () => {
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    const s = sweep();
    const first = s.sweepNow();
    const second = s.sweepNow();
    open();
    expect(await Promise.all([first, second])).toEqual([3, 3]);
    expect(runs).toHaveLength(1);
  });

  it('runs every interval once started, and no more once stopped', async () => {
    const s = sweep(20);
    s.start();
    await waitFor('two sweeps', () => runs.length >= 2, 5_000, 10);
    await s.stop();
    const after = runs.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(runs.length).toBe(after);
  });
});
