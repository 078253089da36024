import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { parseInventory } from '../../server/inventory/index.js';
import type { LifecycleState } from '../../server/model/lifecycle.js';
import { NodeLocks } from '../../server/services/node-locks.js';
import { executeRemoval, planRemoval, type RemovalDeps } from '../../server/services/node-removal.js';
import { openStore } from '../../server/store/index.js';
import type { NodeStatus, ObservedStore } from '../../server/store/types.js';
import { FILE, withNodes } from '../fixtures/inventory/inventories.js';

const inv = parseInventory(
  withNodes(`  - name: n01
    group: head
    mac: 52:54:00:00:01:01
    ip: 10.0.0.1
  - name: n02
    group: head
    macs: [52:54:00:00:01:02, 52:54:00:00:02:02]
  - name: n03
    group: head
    mac: 52:54:00:00:01:03
`),
  FILE,
);

const status = (id: string, state: LifecycleState, mac?: string): [string, NodeStatus] => [id, { id, state, reimageRequested: false, facts: {}, updatedAt: 0, ...(mac ? { mac } : {}) }];
const statuses = new Map([
  status('n01', 'ready', '52:54:00:00:01:01'),
  status('n02', 'provisioning', '52:54:00:00:02:02'),
  status('n03w', 'wiping', '52:54:00:00:03:03'),
  // Entries deleted by hand: the store still knows the names.
  status('old07', 'ready', '52:54:00:00:07:07'),
  status('52:54:00:00:09:09', 'discovered', '52:54:00:00:09:09'),
]);

describe('planRemoval', () => {
  test.each([
    { what: 'a ready node', names: ['n01'], force: false, plan: [{ node: 'n01', inInventory: true, state: 'ready', macs: ['52:54:00:00:01:01'], ip: '10.0.0.1' }] },
    { what: 'a node never seen', names: ['n03'], force: false, plan: [{ node: 'n03', inInventory: true, state: 'unknown', macs: ['52:54:00:00:01:03'] }] },
    {
      what: 'an installing node is refused without force',
      names: ['n02'],
      force: false,
      plan: [{ node: 'n02', inInventory: true, state: 'provisioning', macs: ['52:54:00:00:01:02', '52:54:00:00:02:02'], refused: 'installing now (provisioning): removing it would cut its install off; --force removes it anyway' }],
    },
    { what: 'and taken with force', names: ['n02'], force: true, plan: [{ node: 'n02', inInventory: true, state: 'provisioning', macs: ['52:54:00:00:01:02', '52:54:00:00:02:02'] }] },
    {
      what: 'a node wiping its disks is refused without force (its wiped report would be lost)',
      names: ['n03w'],
      force: false,
      plan: [{ node: 'n03w', inInventory: false, state: 'wiping', macs: ['52:54:00:00:03:03'], refused: expect.stringMatching(/^wiping its disks now: remove it once it is wiped/) }],
    },
    { what: 'and taken with force', names: ['n03w'], force: true, plan: [{ node: 'n03w', inInventory: false, state: 'wiping', macs: ['52:54:00:00:03:03'] }] },
    { what: 'a name only the store knows, with the MAC it was last seen with', names: ['old07'], force: false, plan: [{ node: 'old07', inInventory: false, state: 'ready', macs: ['52:54:00:00:07:07'] }] },
    { what: 'a hostlist, a name twice and another spelling, once each', names: ['n[01,03]', 'N01'], force: false, plan: [{ node: 'n01' }, { node: 'n03' }] },
    {
      what: 'a node an operation holds is refused without force',
      names: ['n01', 'n03'],
      force: false,
      busy: ['n01'],
      plan: [
        {
          node: 'n01',
          inInventory: true,
          state: 'ready',
          macs: ['52:54:00:00:01:01'],
          ip: '10.0.0.1',
          busy: true,
          refused: 'an apply, readiness check, audit or convergence is running on it or queued for it: wait for it to end (rackseed runs list n01), or --force removes it without waiting',
        },
        { node: 'n03', inInventory: true, state: 'unknown', macs: ['52:54:00:00:01:03'] },
      ],
    },
    { what: 'and marked busy, not refused, with force', names: ['n01'], force: true, busy: ['n01'], plan: [{ node: 'n01', inInventory: true, state: 'ready', macs: ['52:54:00:00:01:01'], ip: '10.0.0.1', busy: true }] },
    {
      what: 'an installing node that is busy too keeps the installing refusal',
      names: ['n02'],
      force: false,
      busy: ['n02'],
      plan: [{ node: 'n02', inInventory: true, state: 'provisioning', macs: ['52:54:00:00:01:02', '52:54:00:00:02:02'], busy: true, refused: expect.stringMatching(/^installing now/) }],
    },
  ])('$what', ({ names, force, plan, busy }) => {
    const got = planRemoval(inv, statuses, names, force, (node) => (busy ?? []).includes(node));
    expect(got).toHaveLength(plan.length);
    plan.forEach((p, i) => expect(got[i]).toEqual(Object.keys(p).length > 1 ? p : expect.objectContaining(p)));
  });

  test.each([
    { names: ['nope01'], code: 'NODE_NOT_FOUND', message: 'no node "nope01" in the inventory or the store' },
    { names: ['52:54:00:00:09:09'], code: 'NODE_NOT_FOUND', message: 'no node "52:54:00:00:09:09" in the inventory or the store (that is a discovered machine: store retention forgets it)' },
    { names: ['group:head'], code: 'BAD_REQUEST', message: '"group:head": node remove takes node names and hostlists (gpu[01-04]), not group:, role:, not: or label selectors' },
    { names: ['rack=r1'], code: 'BAD_REQUEST', message: expect.stringContaining('not group:, role:, not: or label selectors') },
    { names: ['n01', 'not:n02'], code: 'BAD_REQUEST', message: expect.stringContaining('"not:n02": node remove takes node names and hostlists') },
    { names: ['n[01-04]'], code: 'NODE_NOT_FOUND', message: 'no node "n04" in the inventory or the store' },
  ])('refuses $names', ({ names, code, message }) => {
    expect(() => planRemoval(inv, statuses, names, false)).toThrow(expect.objectContaining({ code, message }));
  });
});

/** executeRemoval with the server's real lock class and a real store; the inventory and the host keys are stand-ins. */
describe('executeRemoval and the per-node operation locks', () => {
  let dir: string;
  let store: ObservedStore;
  let locks: NodeLocks;
  /** What happened, in order: the removal's steps, and operations that ran on the nodes. */
  let timeline: string[];
  /** Whether n01's lock was held when the inventory edit was made. */
  let heldAtEdit: boolean | undefined;
  let operationDuringRemoval: Promise<void> | undefined;

  const deps = (): RemovalDeps => ({
    inventory: {
      removeNodes: async (names) => {
        timeline.push(`edit ${names.join(',')}`);
        heldAtEdit = locks.isBusy('n01');
        // An apply asked for while the removal edits: it must not start on a node half removed.
        operationDuringRemoval = locks.withNode('n01', async () => void timeline.push('apply n01'));
        return names.map((node) => ({ node, entry: `inventory.yaml:1 (${node})` }));
      },
    },
    store,
    forgetIdentity: async (node) => {
      timeline.push(`forget ${node}`);
      return true;
    },
    releaseLease: async () => undefined,
    locks,
  });

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rackseed-removal-'));
    store = await openStore({ kind: 'sqlite', path: path.join(dir, 'rackseed.db') });
    await store.migrate();
    for (const node of ['n01', 'n03']) await store.recordEvent({ node, event: { type: 'assigned', group: 'head' } });
    await store.touchNode('n01', { mac: '52:54:00:00:01:01' });
    locks = new NodeLocks();
    timeline = [];
    heldAtEdit = undefined;
    operationDuringRemoval = undefined;
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const plan = (names: string[], force = false) => planRemoval(inv, new Map([status('n01', 'assigned', '52:54:00:00:01:01'), status('n03', 'assigned')]), names, force, (n) => locks.isBusy(n));

  test('holds the nodes\' locks while it edits and deletes: an apply asked for meanwhile runs after the removal', async () => {
    const summary = await executeRemoval(plan(['n01', 'n03']), deps());
    expect(summary.removed.map((r) => [r.node, r.keptAs, r.errors])).toEqual([['n01', '52:54:00:00:01:01', []], ['n03', '52:54:00:00:01:03', []]]);
    // Before: the lock was free, and the apply ran between the inventory edit and the host key's deletion.
    expect(heldAtEdit).toBe(true);
    await operationDuringRemoval;
    expect(timeline).toEqual(['edit n01,n03', 'forget n01', 'forget n03', 'apply n01']);
    expect(locks.isBusy('n01') || locks.isBusy('n03')).toBe(false);
  });

  test('a node whose lock was taken after the dry run is refused: nothing is removed', async () => {
    const targets = plan(['n01', 'n03']);
    expect(targets.every((t) => !t.refused)).toBe(true);
    const release = await locks.acquire('n03');
    try {
      await expect(executeRemoval(targets, deps())).rejects.toMatchObject({ code: 'NODE_BUSY', message: expect.stringMatching(/^nothing removed: n03: an apply, readiness check, audit or convergence is running on it/) });
    } finally {
      release();
    }
    expect(timeline).toEqual([]);
    expect(await store.getNode('n01')).toMatchObject({ state: 'assigned' });
    expect(locks.isBusy('n01')).toBe(false);
  });

  test('with force, a busy node is removed without waiting for its lock, and says so', async () => {
    const release = await locks.acquire('n03');
    try {
      // Resolves while n03's lock is still held: a hung apply on a machine being thrown out does not hold it up.
      const summary = await executeRemoval(plan(['n01', 'n03'], true), deps(), true);
      expect(summary.removed).toMatchObject([{ node: 'n01', errors: [] }, { node: 'n03', busy: true, keptAs: '52:54:00:00:01:03', errors: [] }]);
      expect(summary.removed[0]).not.toHaveProperty('busy');
      expect(heldAtEdit).toBe(true);
    } finally {
      release();
    }
    await operationDuringRemoval;
  });
});
