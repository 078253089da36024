import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseInventory } from '../../server/inventory/index.js';
import { isRackseedError } from '../../server/model/errors.js';
import type { LifecycleState } from '../../server/model/lifecycle.js';
import { cancelReimage, executeReimage, planReimage, withdrawSlurmReboots, type Rebooter } from '../../server/services/reimage.js';
import type { SlurmRebooter } from '../../server/services/slurm-reboot.js';
import type { SlurmCancelAnswer, SlurmNodeAnswer } from '../../server/services/slurm-reboot-script.js';
import { openStore } from '../../server/store/index.js';
import type { NodeStatus, ObservedStore } from '../../server/store/types.js';
import { FILE, GROUPS, withNodes } from '../fixtures/inventory/inventories.js';

const NODES = `  - name: head01
    group: head
    ip: 10.0.0.1
  - range: gpu[01-03]
    group: gpu
    ip: 10.0.1.1
    bmc: { address: 10.1.1.1 }
  - name: k01
    group: k3s
    ip: 10.0.2.1
`;
const K3S_GROUP = `  k3s:
    image: debian12
    roles: [base, k3s]
`;
const inv = parseInventory(withNodes(NODES).replace('nodes:\n', `${K3S_GROUP}nodes:\n`), FILE);
/** The same cluster without its Slurm controller. */
const noController = parseInventory(`${GROUPS}${K3S_GROUP}nodes:\n${NODES.split('\n').slice(3).join('\n')}`, FILE);

const status = (id: string, state: LifecycleState): [string, NodeStatus] => [id, { id, state, reimageRequested: false, facts: {}, updatedAt: 0 }];
const statuses = new Map([status('head01', 'ready'), status('gpu01', 'ready'), status('gpu02', 'configuring'), status('gpu03', 'failed'), status('k01', 'ready')]);

describe('planReimage --when-idle', () => {
  it('leaves the reboot of Slurm compute nodes that run their OS to Slurm; every other node reboots as usual', () => {
    const plan = planReimage(inv, statuses, { targets: ['gpu[01-03]', 'k01', 'head01'], whenIdle: true });
    expect(plan.nodes.map((n) => [n.node, n.reboot])).toEqual([
      // The controller runs no jobs (no slurm-compute role).
      ['head01', 'ssh'],
      ['gpu01', 'slurm'],
      ['gpu02', 'slurm'],
      // Not running its OS: no jobs to wait for.
      ['gpu03', 'bmc'],
      ['k01', 'ssh'],
    ]);
    expect(plan.counts).toMatchObject({ toMark: 5, slurm: 2, ssh: 2, bmc: 1 });
  });

  it('a node whose states or readiness failed runs its OS (and maybe jobs): Slurm reboots it; one whose install failed does not', () => {
    const failed = new Map([
      ['gpu01', { id: 'gpu01', state: 'failed' as const, stage: 'readiness', reimageRequested: false, facts: {}, updatedAt: 0 }],
      ['gpu02', { id: 'gpu02', state: 'failed' as const, stage: 'states', reimageRequested: false, facts: {}, updatedAt: 0 }],
      ['gpu03', { id: 'gpu03', state: 'failed' as const, stage: 'download', reimageRequested: false, facts: {}, updatedAt: 0 }],
    ]);
    expect(planReimage(inv, failed, { targets: ['gpu[01-03]'], whenIdle: true }).nodes.map((n) => [n.node, n.reboot])).toEqual([
      ['gpu01', 'slurm'],
      ['gpu02', 'slurm'],
      ['gpu03', 'bmc'],
    ]);
  });

  it('without it, Slurm compute nodes are rebooted at once as before', () => {
    const plan = planReimage(inv, statuses, { targets: ['gpu[01-02]'] });
    expect(plan.nodes.map((n) => n.reboot)).toEqual(['ssh', 'ssh']);
    expect(plan.counts.slurm).toBe(0);
  });

  it('is refused before anything is written when no node of the inventory is a Slurm controller to ask', () => {
    let caught: unknown;
    try {
      planReimage(noController, statuses, { targets: ['gpu01'], whenIdle: true });
    } catch (e) {
      caught = e;
    }
    expect(isRackseedError(caught) && caught.code).toBe('BAD_REQUEST');
    expect((caught as Error).message).toContain('slurm-controller');
    // A when-idle request that touches no Slurm compute node needs no controller.
    expect(planReimage(noController, statuses, { targets: ['k01'], whenIdle: true }).nodes[0]?.reboot).toBe('ssh');
  });
});

describe('executeReimage --when-idle', () => {
  let dir: string;
  let store: ObservedStore;
  const sshCalls: string[] = [];
  const bmcCalls: string[] = [];
  const asked: string[][] = [];

  function rebooter(slurm?: SlurmRebooter): Rebooter {
    return {
      ssh: async (node) => {
        sshCalls.push(node);
      },
      bmcPxe: async (nodes, onResult) =>
        nodes.map((n) => {
          bmcCalls.push(n.name);
          const r = { node: n.name, ok: true, durationMs: 0 };
          onResult(r);
          return r;
        }),
      sshConcurrency: 4,
      sshTimeoutMs: 5_000,
      ...(slurm ? { slurm } : {}),
    };
  }

  const slurmAnswering = (answer: (node: string) => SlurmNodeAnswer): SlurmRebooter => ({
    requestReboots: async (nodes) => {
      asked.push([...nodes]);
      return nodes.map(answer);
    },
    cancelReboots: async () => [],
  });

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rackseed-when-idle-'));
    store = await openStore({ kind: 'sqlite', path: path.join(dir, 'rackseed.db') });
    await store.migrate();
    for (const name of ['gpu01', 'gpu02', 'k01']) {
      for (const type of ['assigned', 'provision_started', 'installed'] as const) {
        const [r] = await store.recordEvents([{ node: name, event: type === 'assigned' ? { type, group: name === 'k01' ? 'k3s' : 'gpu' } : { type } }]);
        if (!r?.ok) throw new Error(`${type} refused for ${name}`);
      }
    }
    sshCalls.length = 0;
    bmcCalls.length = 0;
    asked.length = 0;
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(slurm: SlurmRebooter | undefined) {
    const plan = planReimage(inv, new Map((await store.listNodes()).map((s) => [s.id, s])), { targets: ['gpu[01-02]', 'k01'], whenIdle: true });
    return executeReimage(plan, inv, store, rebooter(slurm));
  }

  it('marks every node, asks Slurm once for its compute nodes, and reboots only the others itself', async () => {
    const summary = await run(slurmAnswering((node) => ({ node, ok: true, slurmState: node === 'gpu01' ? 'draining' : 'reboot^' })));
    expect(summary.marked).toEqual(['gpu01', 'gpu02', 'k01']);
    expect(asked).toEqual([['gpu01', 'gpu02']]);
    expect(sshCalls).toEqual(['k01']);
    expect(bmcCalls).toEqual([]);
    expect(summary.reboots.map((r) => [r.node, r.method, r.ok, r.slurmState ?? null])).toEqual([
      ['gpu01', 'slurm', true, 'draining'],
      ['gpu02', 'slurm', true, 'reboot^'],
      ['k01', 'ssh', true, null],
    ]);
    expect(summary.counts).toMatchObject({ marked: 3, slurmWhenIdle: 2, rebootedSsh: 1, failed: 0 });
    expect((await store.listNodes()).filter((s) => s.reimageRequested).map((s) => s.id).sort()).toEqual(['gpu01', 'gpu02', 'k01']);
  });

  it('a node Slurm refuses, or every node when Slurm cannot be asked, fails and is NOT rebooted by other means (its jobs run on)', async () => {
    const refused = await run(slurmAnswering((node) => (node === 'gpu02' ? { node, ok: false, error: 'Invalid node name specified' } : { node, ok: true })));
    expect(refused.reboots.find((r) => r.node === 'gpu02')).toMatchObject({ method: 'slurm', ok: false });
    expect(refused.reboots.find((r) => r.node === 'gpu02')?.error).toMatch(/Slurm did not take the reboot: Invalid node name specified; rackseed did not reboot it \(its jobs run on\) and its mark stays/);
    expect(refused.counts).toMatchObject({ slurmWhenIdle: 1, failed: 1 });

    sshCalls.length = 0;
    const unreachable = await run(slurmAnswering((node) => ({ node, ok: false, error: 'could not ask Slurm (head01: connect ECONNREFUSED)' })));
    expect(unreachable.reboots.filter((r) => r.method === 'slurm').map((r) => r.ok)).toEqual([false, false]);
    expect(unreachable.counts.failed).toBe(2);
    // gpu nodes have an IP and a BMC: neither was used.
    expect(sshCalls).toEqual(['k01']);
    expect(bmcCalls).toEqual([]);
    // The marks stay: the node installs on its next network boot, however that comes, or the reimage is cancelled.
    expect((await store.listNodes()).filter((s) => s.reimageRequested).map((s) => s.id).sort()).toEqual(['gpu01', 'gpu02', 'k01']);
  });

  it('a node whose slurmd does not answer slurmctld (sinfo state with *) fails: Slurm took the reboot but cannot send it', async () => {
    const summary = await run(slurmAnswering((node) => ({ node, ok: true, slurmState: node === 'gpu01' ? 'down*' : 'draining' })));
    expect(summary.reboots.find((r) => r.node === 'gpu01')).toMatchObject({ method: 'slurm', ok: false, slurmState: 'down*', error: expect.stringContaining('does not respond (down*)') });
    expect(summary.reboots.find((r) => r.node === 'gpu02')).toMatchObject({ method: 'slurm', ok: true, slurmState: 'draining' });
    expect(summary.counts).toMatchObject({ slurmWhenIdle: 1, failed: 1 });
    expect(bmcCalls).toEqual([]);
  });

  it('a server without a Slurm client fails those nodes the same way', async () => {
    const summary = await run(undefined);
    expect(summary.reboots.filter((r) => r.method === 'slurm').map((r) => [r.ok, r.error])).toEqual([
      [false, expect.stringContaining('this server cannot ask Slurm')],
      [false, expect.stringContaining('this server cannot ask Slurm')],
    ]);
    expect(sshCalls).toEqual(['k01']);
  });

  it('a cancel withdraws the Slurm reboots of cancelled compute nodes only, and names those it could not withdraw', async () => {
    await run(slurmAnswering((node) => ({ node, ok: true })));
    const summary = await cancelReimage(inv, store, ['gpu[01-03]', 'k01']);
    expect(summary.cancelled).toEqual(['gpu01', 'gpu02', 'k01']);
    const cancelAsked: string[][] = [];
    const slurm: SlurmRebooter = {
      requestReboots: async () => [],
      cancelReboots: async (nodes) => {
        cancelAsked.push([...nodes]);
        return nodes.map((node): SlurmCancelAnswer => (node === 'gpu01' ? { node, outcome: 'cancelled' } : { node, outcome: 'failed', error: 'slurm_update error: Unable to contact slurm controller' }));
      },
    };
    await withdrawSlurmReboots(inv, summary, slurm, 5_000);
    // gpu03 had no mark, and is asked too (the script touches only a reboot with rackseed's reason); k01 is no Slurm node.
    expect(cancelAsked).toEqual([['gpu01', 'gpu02', 'gpu03']]);
    expect(summary.slurmCancelled).toEqual(['gpu01']);
    expect(summary.slurmNotCancelled).toEqual([
      { node: 'gpu02', error: 'slurm_update error: Unable to contact slurm controller' },
      { node: 'gpu03', error: 'slurm_update error: Unable to contact slurm controller' },
    ]);

    // The controller was down: the marks are gone, yet a second cancel still withdraws what Slurm holds.
    const again = await cancelReimage(inv, store, ['gpu02']);
    expect(again.cancelled).toEqual([]);
    await withdrawSlurmReboots(inv, again, slurm, 5_000);
    expect(cancelAsked.at(-1)).toEqual(['gpu02']);
  });

  it('a node whose install used its mark while Slurm was asked (idle: rebooted at once) is a success, not a cancel', async () => {
    const withdrawn: string[][] = [];
    const slurm: SlurmRebooter = {
      requestReboots: async (nodes) => {
        // gpu01 was idle: Slurm rebooted it at once, and it installed before the last pieces answered.
        for (const type of ['provision_started', 'installed'] as const) {
          const [r] = await store.recordEvents([{ node: 'gpu01', event: { type } }]);
          if (!r?.ok) throw new Error(`${type} refused`);
        }
        return nodes.map((node) => ({ node, ok: true }));
      },
      cancelReboots: async (nodes) => {
        withdrawn.push([...nodes]);
        return [];
      },
    };
    const summary = await run(slurm);
    expect(withdrawn).toEqual([]);
    expect(summary.reboots.filter((r) => r.method === 'slurm').map((r) => [r.node, r.ok])).toEqual([
      ['gpu01', true],
      ['gpu02', true],
    ]);
  });

  it('a cancel that lands while Slurm is being asked cannot leave a Slurm reboot behind: it is withdrawn once Slurm answered', async () => {
    const withdrawn: string[][] = [];
    const slurm: SlurmRebooter = {
      requestReboots: async (nodes) => {
        // An operator's reimage --cancel gpu01 between the marks and Slurm's answer (the marks lock is free by then).
        await cancelReimage(inv, store, ['gpu01']);
        return nodes.map((node) => ({ node, ok: true }));
      },
      cancelReboots: async (nodes) => {
        withdrawn.push([...nodes]);
        return nodes.map((node): SlurmCancelAnswer => ({ node, outcome: 'cancelled' }));
      },
    };
    const summary = await run(slurm);
    expect(withdrawn).toEqual([['gpu01']]);
    expect(summary.reboots.find((r) => r.node === 'gpu01')).toMatchObject({ method: 'slurm', ok: false, error: 'the reimage was cancelled while Slurm was being asked: its Slurm reboot was withdrawn' });
    expect(summary.reboots.find((r) => r.node === 'gpu02')).toMatchObject({ method: 'slurm', ok: true });
  });
});
