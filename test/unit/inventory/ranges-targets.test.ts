import { describe, expect, test } from 'vitest';
import { findNodeByMac, parseInventory, resolveTargets } from '../../../server/inventory/index.js';
import { isRackseedError } from '../../../server/model/errors.js';
import { csvFiles, FILE, withNodes } from '../../fixtures/inventory/inventories.js';

const CSV = `# from the vendor
name,mac,ip,bmc,slot

gpu001,52:54:00:00:01:01
"gpu002",52-54-00-00-01-02,,,
gpu004,"5254.0000.0104",10.0.9.4,10.1.9.4,40
`;

const TEXT = withNodes(`  - name: head01
    group: head
    mac: 52:54:00:00:00:01
    ip: 10.0.0.1
    labels: { site: a }
  - range: gpu[001-004]
    group: gpu
    ip: 10.0.1.254
    bmc: { address: 10.1.1.11, kind: redfish }
    csv: gpu.csv
    rack: r2
    slot: 10
  - range: cpu[1-2]
    group: head
    labels: { site: b }
`);

const inv = parseInventory(TEXT, FILE, csvFiles({ 'gpu.csv': CSV }));

describe('ranges', () => {
  test('expand in inventory order, with addresses and slots counting up', () => {
    const rows = [...inv.nodes.values()].map((n) => [n.name, n.ip, n.bmc?.address, n.slot, n.macs.join(' ')]);
    expect(rows).toEqual([
      ['head01', '10.0.0.1', undefined, undefined, '52:54:00:00:00:01'],
      ['gpu001', '10.0.1.254', '10.1.1.11', 10, '52:54:00:00:01:01'],
      ['gpu002', '10.0.1.255', '10.1.1.12', 11, '52:54:00:00:01:02'],
      // Not in the csv: no MAC yet, still declared.
      ['gpu003', '10.0.2.0', '10.1.1.13', 12, ''],
      // CSV columns override what the range computes.
      ['gpu004', '10.0.9.4', '10.1.9.4', 40, '52:54:00:00:01:04'],
      ['cpu1', undefined, undefined, undefined, ''],
      ['cpu2', undefined, undefined, undefined, ''],
    ]);
    expect(inv.nodes.get('gpu004')!.bmc).toEqual({ address: '10.1.9.4', kind: 'redfish' });
    expect(inv.nodes.get('gpu002')!.labels).toEqual({ rack: 'r2' });
  });

  test('a csv row outside the range is an error naming the csv line', () => {
    const csv = 'name,mac\ngpu001,52:54:00:00:01:01\ngpu009,52:54:00:00:01:09\n';
    expect(() => parseInventory(TEXT, FILE, csvFiles({ 'gpu.csv': csv }))).toThrow(/nodes\[1\]\.csv: gpu\.csv:3: gpu009 is not in range gpu\[001-004\]/);
  });

  test('an address range running past the end of IPv4 is refused', () => {
    const text = withNodes('  - range: n[1-3]\n    group: head\n    ip: 255.255.255.254\n');
    expect(() => parseInventory(text, FILE)).toThrow(/n\[1-3\] needs 3 addresses from 255\.255\.255\.254/);
  });

  test('the csv path is shown next to the inventory file', () => {
    const csv = 'name,mac\ngpu001,nope\n';
    expect(() => parseInventory(TEXT, 'site/inventory.yaml', csvFiles({ 'gpu.csv': csv }))).toThrow('site/gpu.csv:2 mac: "nope" is not a MAC address');
  });
});

describe('resolveTargets', () => {
  const names = (exprs: string[]) => resolveTargets(inv, exprs).map((n) => n.name);

  test.each([
    { exprs: ['head01'], want: ['head01'] },
    { exprs: ['gpu[002-003]'], want: ['gpu002', 'gpu003'] },
    { exprs: ['gpu[001-002],cpu1'], want: ['gpu001', 'gpu002', 'cpu1'] },
    { exprs: ['group:gpu'], want: ['gpu001', 'gpu002', 'gpu003', 'gpu004'] },
    { exprs: ['role:slurm-controller'], want: ['head01', 'cpu1', 'cpu2'] },
    { exprs: ['rack=r2'], want: ['gpu001', 'gpu002', 'gpu003', 'gpu004'] },
    { exprs: ['site=b'], want: ['cpu1', 'cpu2'] },
    // Union without duplicates, in inventory order, not argument order.
    { exprs: ['cpu2', 'gpu004', 'group:gpu', 'head01'], want: ['head01', 'gpu001', 'gpu002', 'gpu003', 'gpu004', 'cpu2'] },
    // not: takes nodes out of what the others select, wherever it stands, whatever kind of target it names.
    { exprs: ['group:gpu', 'not:gpu002'], want: ['gpu001', 'gpu003', 'gpu004'] },
    { exprs: ['not:gpu[001-002]', 'group:gpu'], want: ['gpu003', 'gpu004'] },
    { exprs: ['role:slurm-controller', 'not:site=b'], want: ['head01'] },
    { exprs: ['group:gpu', 'group:head', 'not:group:head', ' not: gpu004 '], want: ['gpu001', 'gpu002', 'gpu003'] },
    // Sparing a node the others did not select changes nothing.
    { exprs: ['group:gpu', 'not:head01'], want: ['gpu001', 'gpu002', 'gpu003', 'gpu004'] },
  ])('$exprs', ({ exprs, want }) => {
    expect(names(exprs)).toEqual(want);
  });

  test.each([
    ['gpu009', /target "gpu009": no node gpu009 in the inventory/],
    ['gpu[003-006]', /no nodes gpu\[005-006\]/],
    ['group:nope', /no group "nope" \(groups: gpu, head\)/],
    ['role:nope', /target "role:nope": matches no node/],
    ['rack=r9', /target "rack=r9": matches no node/],
    ['group:gpu not:gpu009', /target "not:gpu009": no node gpu009 in the inventory/],
    ['group:gpu not:rack=r9', /target "not:rack=r9": matches no node/],
    ['not:gpu001', /only not: targets: name the nodes to start from too/],
    ['gpu001 not:group:gpu', /the not: targets take out every node the others select/],
    ['group:gpu not:', /not: names no nodes/],
    ['group:gpu not:not:gpu001', /not: takes a target, not another not:/],
  ])('%s matches nothing', (expr, message) => {
    let err: unknown;
    try {
      resolveTargets(inv, expr.split(' '));
    } catch (e) {
      err = e;
    }
    expect(isRackseedError(err) && err.code).toBe('INVENTORY_NOT_FOUND');
    expect((err as Error).message).toMatch(message);
  });

  test('a malformed range is a hostlist error', () => {
    expect(() => resolveTargets(inv, ['gpu[4-1]'])).toThrow(expect.objectContaining({ code: 'HOSTLIST_INVALID' }));
  });
});

describe('findNodeByMac', () => {
  test.each([
    ['52:54:00:00:01:04', 'gpu004'],
    ['52-54-00-00-01-04', 'gpu004'],
    ['525400000001', 'head01'],
    ['52:54:00:00:0f:0f', undefined],
    ['not a mac', undefined],
  ])('%s', (mac, name) => {
    expect(findNodeByMac(inv, mac)?.name).toBe(name);
  });
});
