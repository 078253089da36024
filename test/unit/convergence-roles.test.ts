import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../server/inventory/parse.js';
import { membershipPeers, peersRenderingHardwareOf, roleChanges, roleSnapshot } from '../../server/services/convergence-roles.js';

const inventory = (groups: string, nodes: string): string => `cluster: { name: c }\ngroups:\n${groups}\nnodes:\n${nodes}\n`;

const GROUPS = `  web: { roles: [base, web] }
  db: { roles: [base, db] }`;
const NODES = `  - { name: n1, mac: "02:00:00:00:00:01", group: web }
  - { name: n2, mac: "02:00:00:00:00:02", group: web }
  - { name: n3, mac: "02:00:00:00:00:03", group: db }`;

const snap = (text: string) => roleSnapshot(parseInventory(text, 'inventory.yaml'));

describe('role changes between two inventory versions', () => {
  it('none when only other fields change (an IP, a label, the MAC)', () => {
    const before = snap(inventory(GROUPS, NODES));
    const after = snap(inventory(GROUPS, NODES.replace('02:00:00:00:00:01"', '02:00:00:00:00:11", ip: 10.0.0.9, labels: { rack: r1 }')));
    expect(roleChanges(before, after)).toEqual([]);
  });

  it("a group's new role touches every node of that group, and only those", () => {
    const before = snap(inventory(GROUPS, NODES));
    const after = snap(inventory(GROUPS.replace('[base, web]', '[base, web, cache]'), NODES));
    expect(roleChanges(before, after)).toEqual([
      { node: 'n1', before: { group: 'web', roles: ['base', 'web'] }, after: { group: 'web', roles: ['base', 'web', 'cache'] } },
      { node: 'n2', before: { group: 'web', roles: ['base', 'web'] }, after: { group: 'web', roles: ['base', 'web', 'cache'] } },
    ]);
  });

  it('a node moved to another group, or given its own roles, is touched', () => {
    const before = snap(inventory(GROUPS, NODES));
    const moved = snap(inventory(GROUPS, NODES.replace('00:01", group: web', '00:01", group: db')));
    expect(roleChanges(before, moved).map((c) => c.node)).toEqual(['n1']);
    const overridden = snap(inventory(GROUPS, NODES.replace('00:03", group: db', '00:03", group: db, overrides: { roles: [base, db, backup] }')));
    expect(roleChanges(before, overridden)).toEqual([{ node: 'n3', before: { group: 'db', roles: ['base', 'db'] }, after: { group: 'db', roles: ['base', 'db', 'backup'] } }]);
  });

  it('a reordering is a change (order decides which states run first)', () => {
    const before = snap(inventory(GROUPS, NODES));
    const after = snap(inventory(GROUPS.replace('[base, db]', '[db, base]'), NODES));
    expect(roleChanges(before, after).map((c) => c.node)).toEqual(['n3']);
  });

  it('nodes added or removed are not role changes', () => {
    const before = snap(inventory(GROUPS, NODES));
    const after = snap(inventory(GROUPS, `${NODES.split('\n').slice(1).join('\n')}\n  - { name: n4, mac: "02:00:00:00:00:04", group: web }`));
    expect(roleChanges(before, after)).toEqual([]);
  });
});

describe('nodes that render a node\'s hardware into their own configuration', () => {
  const SLURM_GROUPS = `  head: { roles: [base, slurm-controller] }
  compute: { roles: [base, slurm-compute] }
  login: { roles: [base, slurm-login] }
  web: { roles: [base, web] }`;
  const SLURM_NODES = `  - { name: h1, mac: "02:00:00:00:01:01", group: head }
  - { name: c1, mac: "02:00:00:00:01:02", group: compute }
  - { name: c2, mac: "02:00:00:00:01:03", group: compute }
  - { name: l1, mac: "02:00:00:00:01:04", group: login }
  - { name: w1, mac: "02:00:00:00:01:05", group: web }`;
  const inv = parseInventory(inventory(SLURM_GROUPS, SLURM_NODES), 'inventory.yaml');

  it.each([
    // A compute node's CPUs, memory and GPUs are in every Slurm node's slurm.conf.
    ['c1', ['h1', 'c2', 'l1']],
    ['c2', ['h1', 'c1', 'l1']],
    // Controllers and login nodes have no NodeName line; other roles read no other node's facts.
    ['h1', []],
    ['l1', []],
    ['w1', []],
    ['gone', []],
  ])('%s -> %j', (changed, expected) => {
    expect(peersRenderingHardwareOf(inv, changed)).toEqual(expected);
  });
});

describe('nodes that render a role\'s membership (slurm.conf, the K3s init server)', () => {
  const GROUPS2 = `  head: { roles: [base, slurm-controller] }
  compute: { roles: [base, slurm-compute] }
  plain: { roles: [base] }
  k3sctl: { roles: [base, k3s-server] }
  k3s: { roles: [base, k3s-agent] }`;
  const node = (name: string, i: number, group: string) => `  - { name: ${name}, mac: "02:00:00:00:02:${String(i).padStart(2, '0')}", group: ${group} }`;
  const base = [node('ctl', 1, 'head'), node('c1', 2, 'compute'), node('spare', 3, 'plain'), node('ks', 4, 'k3sctl'), node('ka', 5, 'k3s')];
  const snapOf = (nodes: string[]) => snap(inventory(GROUPS2, nodes.join('\n')));

  it.each([
    ['a node joins slurm-compute: the other Slurm nodes', [node('ctl', 1, 'head'), node('c1', 2, 'compute'), node('spare', 3, 'compute'), base[3]!, base[4]!], ['c1', 'ctl']],
    ['a node leaves slurm-compute: the remaining Slurm nodes', [node('ctl', 1, 'head'), node('c1', 2, 'plain'), base[2]!, base[3]!, base[4]!], ['ctl']],
    ['a Slurm node leaves the inventory', [base[0]!, base[2]!, base[3]!, base[4]!], ['ctl']],
    ['a K3s server becomes an agent: the other K3s nodes', [base[0]!, base[1]!, base[2]!, node('ks', 4, 'k3s'), base[4]!], ['ka']],
    ['a node new to the inventory is not a change yet (it joins once installed)', [...base, node('c9', 9, 'compute')], []],
    ['a change outside the families re-renders nobody else', [base[0]!, base[1]!, node('spare', 3, 'plain'), base[3]!, base[4]!], []],
  ])('%s', (_what, after, expected) => {
    expect(membershipPeers(snapOf(base), snapOf(after))).toEqual(expected);
  });
});

describe('the K3s role a plain k3s node plays', () => {
  it('a change of k3s.role is a role change, and the other K3s nodes re-render (their init server)', () => {
    const text = (role: string) =>
      inventory(`  k: { roles: [base, k3s], data: { k3s: { role: agent } } }`, [
        `  - { name: k00, mac: "02:00:00:00:04:01", group: k, overrides: { data: { k3s: { role: ${role} } } } }`,
        `  - { name: k01, mac: "02:00:00:00:04:02", group: k, overrides: { data: { k3s: { role: server } } } }`,
        `  - { name: k02, mac: "02:00:00:00:04:03", group: k }`,
      ].join('\n'));
    const [before, after] = [snap(text('agent')), snap(text('server'))];
    // Before: no change at all (the roles list reads [base, k3s] either way).
    expect(roleChanges(before, after).map((c) => [c.node, c.after.roles])).toEqual([['k00', ['base', 'k3s', 'k3s-server']]]);
    expect(membershipPeers(before, after)).toEqual(['k01', 'k02']);
  });
});
