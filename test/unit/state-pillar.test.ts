import { describe, expect, it } from 'vitest';
import { compileForNode } from '../../server/state/compile/index.js';
import { parseInventory } from '../../server/inventory/index.js';
import { composePillar, deepMerge } from '../../server/state/pillar.js';
import { createMemorySource } from '../../server/state/source.js';
import { makeContext } from '../fixtures/sls/context.js';

const DOCUMENTS = {
  'groups/gpu': { slurm: { partition: 'gpu', features: ['h100'] }, ntp: 'ntp.lab' },
  'groups/cpu': { slurm: { partition: 'cpu' }, secret_cpu_group: 'cpu-group-secret' },
  'nodes/gpu01': { bmc: { password: 'gpu01-secret' }, slurm: { weight: 10 } },
  'nodes/gpu02': { bmc: { password: 'gpu02-secret' } },
  'nodes/cpu01': { bmc: { password: 'cpu01-secret' } },
};

const NODES = [
  { name: 'gpu01', group: 'gpu' },
  { name: 'gpu02', group: 'gpu' },
  { name: 'cpu01', group: 'cpu' },
];

describe('pillar composition', () => {
  it('layers group data, groups/<group>, node data, nodes/<node>, the node winning, mappings deep-merged', () => {
    const pillar = composePillar({
      node: { name: 'gpu01', group: 'gpu' },
      groupData: { ntp: 'pool.ntp.org', slurm: { partition: 'default', weight: 1 } },
      nodeData: { slurm: { weight: 5 }, rack: 'r1' },
      documents: DOCUMENTS,
    });
    expect(pillar).toEqual({ ntp: 'ntp.lab', slurm: { partition: 'gpu', weight: 10, features: ['h100'] }, rack: 'r1', bmc: { password: 'gpu01-secret' } });
  });

  it('the positional form takes the resolved node (its own overrides.data) and its group', () => {
    const pillar = composePillar({ name: 'gpu02', group: 'gpu', ownData: { slurm: { weight: 3 } } }, { data: { ntp: 'pool' } }, DOCUMENTS);
    expect(pillar).toEqual({ ntp: 'ntp.lab', slurm: { partition: 'gpu', features: ['h100'], weight: 3 }, bmc: { password: 'gpu02-secret' } });
  });

  it("a group's pillar file outranks the group's inventory data for a resolved node, and the node's overrides outrank both", () => {
    const inv = parseInventory(
      `cluster: { name: t }\ngroups:\n  gpu:\n    data:\n      ntp: pool\n      nvidia: { driver: '535.183.01', cuda: '12.2' }\nnodes:\n  - { name: gpu01, mac: "52:54:00:00:00:01", group: gpu }\n  - name: gpu02\n    mac: "52:54:00:00:00:02"\n    group: gpu\n    overrides: { data: { nvidia: { cuda: '12.4' } } }\n`,
      'inventory.yaml',
    );
    const docs = { 'groups/gpu': { nvidia: { driver: '550.54.15' } } };
    expect(composePillar(inv.nodes.get('gpu01')!, inv.groups.get('gpu'), docs)).toEqual({ ntp: 'pool', nvidia: { driver: '550.54.15', cuda: '12.2' } });
    expect(composePillar(inv.nodes.get('gpu02')!, inv.groups.get('gpu'), docs)).toEqual({ ntp: 'pool', nvidia: { driver: '550.54.15', cuda: '12.4' } });
  });

  it('lists are replaced, not concatenated; unsafe keys are dropped', () => {
    expect(deepMerge({ a: [1, 2], b: { c: 1 } }, { a: [3] })).toEqual({ a: [3], b: { c: 1 } });
    const merged = deepMerge({}, JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as Record<string, unknown>);
    expect(merged).toEqual({ ok: 1 });
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('the result shares nothing with the inputs', () => {
    const documents = { 'nodes/n': { list: [1], deep: { x: 1 } } };
    const pillar = composePillar({ node: { name: 'n', group: 'g' }, documents });
    (pillar['list'] as number[]).push(2);
    (pillar['deep'] as Record<string, number>)['x'] = 9;
    expect(documents['nodes/n']).toEqual({ list: [1], deep: { x: 1 } });
  });

  // A node never sees another node's pillar: not in its pillar, not in anything its SLS can render.
  it.each(NODES)('$name sees only its own and its group\'s pillar', ({ name, group }) => {
    const pillar = composePillar({ node: { name, group }, documents: DOCUMENTS });
    const text = JSON.stringify(pillar);
    const others = NODES.filter((n) => n.name !== name);
    for (const other of others) expect(text).not.toContain(`${other.name}-secret`);
    if (group !== 'cpu') expect(text).not.toContain('cpu-group-secret');
    expect(text).toContain(`${name}-secret`);

    // Render everything the template can reach and check again.
    const source = createMemorySource({ files: { 'dump.sls': 'dump:\n  test.nop:\n    - pillar: {{ pillar|tojson }}\n    - cluster: {{ cluster|tojson }}\n' } });
    const context = makeContext({ name, node: { name, group, roles: [], labels: {}, macs: [] }, group: { name: group, data: {} }, pillar });
    const plan = compileForNode({ source, context, sls: ['dump'] });
    const rendered = JSON.stringify(plan.states[0]!.args);
    for (const other of others) expect(rendered).not.toContain(`${other.name}-secret`);
    expect(rendered).toContain(`${name}-secret`);
  });
});
