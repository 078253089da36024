import { describe, expect, test } from 'vitest';
import { parseInventory } from '../../server/inventory/index.js';
import type { LifecycleState } from '../../server/model/lifecycle.js';
import { planRemoval } from '../../server/services/node-removal.js';
import type { NodeStatus } from '../../server/store/types.js';
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
    { what: 'a name only the store knows, with the MAC it was last seen with', names: ['old07'], force: false, plan: [{ node: 'old07', inInventory: false, state: 'ready', macs: ['52:54:00:00:07:07'] }] },
    { what: 'a hostlist, a name twice and another spelling, once each', names: ['n[01,03]', 'N01'], force: false, plan: [{ node: 'n01' }, { node: 'n03' }] },
  ])('$what', ({ names, force, plan }) => {
    const got = planRemoval(inv, statuses, names, force);
    expect(got).toHaveLength(plan.length);
    plan.forEach((p, i) => expect(got[i]).toEqual(Object.keys(p).length > 1 ? p : expect.objectContaining(p)));
  });

  test.each([
    { names: ['nope01'], code: 'NODE_NOT_FOUND', message: 'no node "nope01" in the inventory or the store' },
    { names: ['52:54:00:00:09:09'], code: 'NODE_NOT_FOUND', message: 'no node "52:54:00:00:09:09" in the inventory or the store (that is a discovered machine: store retention forgets it)' },
    { names: ['group:head'], code: 'BAD_REQUEST', message: '"group:head": node remove takes node names and hostlists (gpu[01-04]), not group:, role: or label selectors' },
    { names: ['rack=r1'], code: 'BAD_REQUEST', message: expect.stringContaining('not group:, role: or label selectors') },
    { names: ['n[01-04]'], code: 'NODE_NOT_FOUND', message: 'no node "n04" in the inventory or the store' },
  ])('refuses $names', ({ names, code, message }) => {
    expect(() => planRemoval(inv, statuses, names, false)).toThrow(expect.objectContaining({ code, message }));
  });
});
