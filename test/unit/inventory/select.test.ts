import { describe, expect, test } from 'vitest';
import { parseInventory, selectGroup } from '../../../server/inventory/index.js';
import type { Group } from '../../../server/model/inventory.js';
import { FILE, withNodes } from '../../fixtures/inventory/inventories.js';

function group(name: string, selector: Record<string, string>): Group {
  return { name, selector, roles: [], kernelArgs: [], hardware: {}, installedBoot: 'local', uefiLoader: 'ipxe.efi', leaseSeconds: 86400, data: {} };
}

describe('selectGroup', () => {
  const groups = [
    group('catchall', {}),
    group('r2', { rack: 'r2' }),
    group('xe9680', { product: 'PowerEdge XE9680' }),
    group('r2-xe9680', { rack: 'r2', product: 'PowerEdge XE9680' }),
    group('b-r3', { rack: 'r3' }),
    group('a-r3', { rack: 'r3' }),
  ];

  test.each<{ labels: Record<string, string>; want: string; why: string }>([
    { labels: { rack: 'r2', product: 'PowerEdge XE9680' }, want: 'r2-xe9680', why: 'most specific match wins' },
    { labels: { rack: 'r2', product: 'PowerEdge R650' }, want: 'r2', why: 'a partial match does not count' },
    { labels: { rack: 'r1', product: 'PowerEdge XE9680' }, want: 'xe9680', why: 'SMBIOS facts work as labels' },
    { labels: { rack: 'r3' }, want: 'a-r3', why: 'ties break by group name' },
    { labels: { rack: 'r9' }, want: 'catchall', why: 'an empty selector is the fallback' },
    { labels: {}, want: 'catchall', why: 'no labels at all' },
  ])('$why', ({ labels, want }) => {
    expect(selectGroup(labels, groups)?.name).toBe(want);
    expect(selectGroup(labels, [...groups].reverse())?.name).toBe(want);
  });

  test('no match without a catch-all group', () => {
    expect(selectGroup({ rack: 'r9' }, groups.filter((g) => g.name !== 'catchall'))).toBeUndefined();
  });
});

describe('resolution', () => {
  test('a node without group: is placed by its labels, rack included', () => {
    const text = `cluster: { name: t }
groups:
  any: { selector: {} }
  gpu: { selector: { rack: r2 } }
  fast-gpu: { selector: { rack: r2, fabric: ndr } }
nodes:
  - { name: a, rack: r2 }
  - { name: b, rack: r2, labels: { fabric: ndr } }
  - { name: c, labels: { rack: r7 } }
  - { name: d, rack: r2, group: any }
`;
    const inv = parseInventory(text, FILE);
    expect([...inv.nodes.values()].map((n) => [n.name, n.group])).toEqual([
      ['a', 'gpu'],
      ['b', 'fast-gpu'],
      ['c', 'any'],
      ['d', 'any'],
    ]);
  });

  test('a group without selector: takes only the nodes that name it; a node no selector matches is refused', () => {
    const text = `cluster: { name: t }
groups:
  head: { roles: [base, slurm-controller] }
  gpu: { selector: { rack: r2 } }
nodes:
  - { name: h1, group: head }
  - { name: a, rack: r2 }
`;
    expect([...parseInventory(text, FILE).nodes.values()].map((n) => [n.name, n.group])).toEqual([
      ['h1', 'head'],
      ['a', 'gpu'],
    ]);
    // Before: head (no selector, read as {}) took n9 and made it a Slurm controller.
    expect(() => parseInventory(`${text}  - { name: n9, rack: r9 }\n`, FILE)).toThrow(/\(n9\): no group: given and no group's selector matches its labels \(rack=r9\)/);
  });

  test("overrides win over the group's settings; data merges deeply; kernel args are replaced", () => {
    const inv = parseInventory(
      withNodes(`  - name: gpu01
    group: gpu
    overrides:
      image: rocky9-debug
      kernel_args: [debug]
      data: { slurm: { weight: 20 }, extra: true }
  - name: gpu02
    group: gpu
`),
      FILE,
    );
    const gpu01 = inv.nodes.get('gpu01')!;
    expect(gpu01.image).toBe('rocky9-debug');
    expect(gpu01.roles).toEqual(['base', 'slurm-compute']);
    expect(gpu01.kernelArgs).toEqual(['debug']);
    expect(gpu01.data).toEqual({ slurm: { partition: 'gpu', weight: 20 }, extra: true });
    const gpu02 = inv.nodes.get('gpu02')!;
    expect(gpu02.image).toBe('rocky9');
    expect(gpu02.kernelArgs).toEqual(['quiet']);
    expect(gpu02.data).toEqual({ slurm: { partition: 'gpu', weight: 10 } });
    // The group's own data must not be changed by a node's overrides.
    expect(inv.groups.get('gpu')!.data).toEqual({ slurm: { partition: 'gpu', weight: 10 } });
  });

  test('defaults', () => {
    const inv = parseInventory('cluster: { name: t }\ngroups: { g: {} }\nnodes:\n  - { name: n1, group: g, bmc: { address: n1-bmc.example.org } }\n', FILE);
    expect(inv.cluster).toEqual({ name: 't', domain: 'cluster.local' });
    expect(inv.nodes.get('n1')).toEqual({
      name: 'n1',
      macs: [],
      group: 'g',
      bmc: { address: 'n1-bmc.example.org', kind: 'ipmi' },
      labels: {},
      roles: [],
      kernelArgs: [],
      hardware: {},
      installedBoot: 'local',
      uefiLoader: 'snponly.efi',
      leaseSeconds: 86400,
      data: {},
    });
  });

  test('empty groups: and nodes: are allowed', () => {
    const inv = parseInventory('cluster:\n  name: t\ngroups:\nnodes:\n', FILE);
    expect(inv.groups.size).toBe(0);
    expect(inv.nodes.size).toBe(0);
  });

  test('text fields keep what was typed even where YAML sees numbers', () => {
    const inv = parseInventory("cluster: { name: t }\ngroups:\n  g: { selector: { rack: '07' }, kernel_args: ['3'] }\nnodes:\n  - { name: n1, rack: 07, slot: 3 }\n", FILE);
    const n1 = inv.nodes.get('n1')!;
    expect(n1.group).toBe('g');
    expect(n1.rack).toBe('07');
    expect(n1.slot).toBe(3);
    expect(n1.kernelArgs).toEqual(['3']);
  });

  test('a label or selector key named like a numeric field is still text (slot: 5 as a label is "5")', () => {
    const inv = parseInventory('cluster: { name: t }\ngroups:\n  g: { selector: { count: 8 } }\nnodes:\n  - { name: n1, labels: { count: 8, slot: 5 }, slot: 3 }\n', FILE);
    const n1 = inv.nodes.get('n1')!;
    expect(n1.group).toBe('g');
    expect(n1.labels).toMatchObject({ count: '8', slot: '5' });
    expect(n1.slot).toBe(3);
  });
});
