import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../server/inventory/index.js';
import type { LifecycleState } from '../../server/model/lifecycle.js';
import { isRackseedError } from '../../server/model/errors.js';
import { planReimage } from '../../server/services/reimage.js';
import type { NodeStatus } from '../../server/store/types.js';
import { FILE, withNodes } from '../fixtures/inventory/inventories.js';

const inv = parseInventory(
  withNodes(`  - name: head01
    group: head
    ip: 10.0.0.1
    bmc: { address: 10.1.0.1 }
  - range: gpu[01-04]
    group: gpu
    ip: 10.0.1.1
    bmc: { address: 10.1.1.1, kind: redfish }
  - name: gpu05
    group: gpu
    ip: 10.0.1.5
  - name: gpu06
    group: gpu
`),
  FILE,
);

const status = (id: string, state: LifecycleState, extra: Partial<NodeStatus> = {}): [string, NodeStatus] => [id, { id, state, reimageRequested: false, facts: {}, updatedAt: 0, ...extra }];
const statuses = new Map([
  status('head01', 'ready'),
  status('gpu01', 'ready'),
  status('gpu02', 'installed', { reimageRequested: true }),
  status('gpu03', 'failed'),
  status('gpu04', 'discovered'),
  status('gpu05', 'configuring'),
  status('gpu06', 'assigned'),
]);

function thrown(f: () => unknown): { code?: string; message: string } {
  try {
    f();
  } catch (e) {
    return { code: isRackseedError(e) ? e.code : undefined, message: (e as Error).message };
  }
  throw new Error('expected an error');
}

describe('planReimage', () => {
  it('resolves targets and picks the reboot path per node: ssh when up with an IP, else BMC, else by hand', () => {
    const plan = planReimage(inv, statuses, { targets: ['group:gpu'] });
    expect(plan.nodes.map((n) => [n.node, n.state, n.reboot, n.bmcFallback, n.skip ?? null])).toEqual([
      ['gpu01', 'ready', 'ssh', true, null],
      ['gpu02', 'installed', 'ssh', true, null],
      ['gpu03', 'failed', 'bmc', false, null],
      ['gpu04', 'discovered', 'bmc', false, 'not assigned yet: nothing to reimage'],
      ['gpu05', 'configuring', 'ssh', false, null],
      ['gpu06', 'assigned', 'manual', false, null],
    ]);
    expect(plan.counts).toEqual({ targeted: 6, toMark: 5, skipped: 1, ssh: 3, bmc: 1, manual: 1, slurm: 0 });
    expect(plan.nodes.find((n) => n.node === 'gpu02')?.alreadyPending).toBe(true);
  });

  it('a node the store has never seen is skipped, not guessed at', () => {
    const plan = planReimage(inv, new Map(), { targets: ['head01'] });
    expect(plan.nodes[0]).toMatchObject({ node: 'head01', reboot: 'bmc', skip: 'not assigned yet: nothing to reimage' });
    expect(plan.counts.toMark).toBe(0);
  });

  it('a node installing now is left alone unless forced (the reimage threw its install away with a BMC reset)', () => {
    const installing = new Map([...statuses, status('gpu06', 'provisioning')]);
    const plan = planReimage(inv, installing, { targets: ['gpu06'] });
    expect(plan.nodes[0]).toMatchObject({ node: 'gpu06', state: 'provisioning', skip: 'installing now: left alone (force restarts its install)' });
    expect(plan.counts).toMatchObject({ toMark: 0, skipped: 1 });
    const forced = planReimage(inv, installing, { targets: ['gpu06'], force: true });
    expect(forced.nodes[0]?.skip).toBeUndefined();
    expect(forced.counts).toMatchObject({ toMark: 1, manual: 1 });
  });

  it('a wipe plans like a reimage, with its mode; a node wiping now is left alone unless forced; it takes no group and no --when-idle', () => {
    const wiping = new Map([...statuses, status('gpu06', 'wiping', { wipeRequested: 'quick' }), status('gpu05', 'configuring', { wipeRequested: 'full' })]);
    const plan = planReimage(inv, wiping, { targets: ['gpu0[4-6]', 'head01'], wipe: 'full' });
    expect(plan.wipe).toBe('full');
    expect(plan.nodes.map((n) => [n.node, n.reboot, n.alreadyPending, n.skip ?? null])).toEqual([
      ['head01', 'ssh', false, null],
      ['gpu04', 'bmc', false, 'not assigned yet: nothing to wipe'],
      ['gpu05', 'ssh', true, null],
      ['gpu06', 'manual', true, 'wiping its disks now: left alone (force restarts the wipe)'],
    ]);
    expect(planReimage(inv, wiping, { targets: ['gpu06'], wipe: 'quick', force: true }).counts).toMatchObject({ toMark: 1, skipped: 0 });
    expect(planReimage(inv, statuses, { targets: ['gpu01'] })).not.toHaveProperty('wipe');
    expect(thrown(() => planReimage(inv, statuses, { targets: ['gpu01'], wipe: 'quick', group: 'head' }))).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('a wipe takes no group') });
    expect(thrown(() => planReimage(inv, statuses, { targets: ['gpu01'], wipe: 'quick', whenIdle: true }))).toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('an unknown target is an error, not an empty plan', () => {
    expect(thrown(() => planReimage(inv, statuses, { targets: ['gpu[01-09]'] }))).toMatchObject({ code: 'INVENTORY_NOT_FOUND', message: expect.stringMatching(/gpu\[07-09\]/) });
  });

  it('is pure: planning twice gives the same plan and changes neither input', () => {
    const before = JSON.stringify([...statuses]);
    const a = planReimage(inv, statuses, { targets: ['role:slurm-compute'] });
    const b = planReimage(inv, statuses, { targets: ['role:slurm-compute'] });
    expect(a).toEqual(b);
    expect(JSON.stringify([...statuses])).toBe(before);
  });
});

describe('planReimage into another group', () => {
  it('plans each node into the requested group and names the group it leaves', () => {
    const plan = planReimage(inv, statuses, { targets: ['head01', 'gpu05'], group: 'gpu' }, new Map([['head01', 'head']]));
    expect(plan.nodes.map((n) => ({ node: n.node, group: n.group, fromGroup: n.fromGroup }))).toEqual([
      { node: 'head01', group: 'gpu', fromGroup: 'head' },
      { node: 'gpu05', group: 'gpu', fromGroup: undefined },
    ]);
    // Without a group, each node keeps its own.
    expect(planReimage(inv, statuses, { targets: ['head01'] }).nodes[0]).not.toHaveProperty('fromGroup');
    expect(planReimage(inv, statuses, { targets: ['head01'] }).nodes[0]!.group).toBe('head');
  });
});
