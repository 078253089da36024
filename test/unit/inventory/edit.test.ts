import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { addNodeToText, csvReaderFor, importCsvToText, moveNodesToGroupInText, parseInventory, removeNodesFromText } from '../../../server/inventory/index.js';
import { csvFiles, FILE } from '../../fixtures/inventory/inventories.js';

const TEXT = `# Lab cluster. Hand-edited; keep the comments.
cluster:
  name: lab

groups:
  head: { roles: [base] }
  gpu:
    roles: [base, slurm-compute]
    selector: { rack: r2 }

nodes:
  # The controller.
  - name: head01
    mac: 52:54:00:00:00:01     # onboard port 1
    ip: 10.0.0.1               # aligned comments must stay aligned
    group: head
  - { name: head02, mac: 52:54:00:00:00:02, group: head }
  - name: login01
    macs: [52:54:00:00:00:03]
    group: head
    bmc: { address: 10.1.0.3, kind: redfish }
  - range: gpu[01-02]
    group: gpu
    csv: gpu.csv
# end of file
`;
const CSV = { 'gpu.csv': 'name,mac\ngpu01,52:54:00:00:02:01\ngpu02,52:54:00:00:02:02\n' };
const readCsv = csvFiles(CSV);

describe('addNodeToText', () => {
  test('appends an entry and leaves every other byte alone', () => {
    const out = addNodeToText(
      TEXT,
      FILE,
      { name: 'gpu03', macs: ['52-54-00-00-02-03'], ip: '10.0.1.3', rack: 'r2', slot: 3, bmc: { address: '10.1.1.3' }, labels: { fabric: 'ndr' } },
      readCsv,
    );
    const added = [
      '  - name: gpu03',
      '    mac: 52:54:00:00:02:03',
      '    ip: 10.0.1.3',
      '    bmc: { address: 10.1.1.3 }',
      '    labels: { fabric: ndr }',
      '    rack: r2',
      '    slot: 3',
      '',
    ].join('\n');
    expect(out).toBe(TEXT.replace('# end of file\n', `${added}# end of file\n`));
    expect(out).toContain('    ip: 10.0.0.1               # aligned comments must stay aligned\n');
    const inv = parseInventory(out, FILE, readCsv);
    expect(inv.nodes.get('gpu03')).toMatchObject({ group: 'gpu', macs: ['52:54:00:00:02:03'], labels: { rack: 'r2', fabric: 'ndr' } });
  });

  test('several MACs become a macs: list', () => {
    const out = addNodeToText(TEXT, FILE, { name: 'n9', macs: ['52:54:00:00:09:01', '52:54:00:00:09:02'], group: 'head' }, readCsv);
    expect(out).toContain('  - name: n9\n    macs: [ 52:54:00:00:09:01, 52:54:00:00:09:02 ]\n    group: head\n');
  });

  test.each([
    {
      what: 'a MAC used by a range member',
      entry: { name: 'n9', macs: ['52:54:00:00:02:02'], group: 'head' },
      message: `the new entry (n9) and ${FILE}:22 nodes[3] range gpu[01-02] (gpu02, gpu.csv:3) both use MAC 52:54:00:00:02:02`,
    },
    {
      what: 'a name that exists',
      entry: { name: 'head02', macs: ['52:54:00:00:09:01'], group: 'head' },
      message: `the new entry (head02) and ${FILE}:17 nodes[1] (head02) both declare node head02`,
    },
    {
      what: 'an IP that is taken',
      entry: { name: 'n9', macs: ['52:54:00:00:09:01'], group: 'head', ip: '10.0.0.1' },
      message: `the new entry (n9) and ${FILE}:13 nodes[0] (head01) both use IP 10.0.0.1`,
    },
  ])('rejects a duplicate: $what', ({ entry, message }) => {
    expect(() => addNodeToText(TEXT, FILE, entry, readCsv)).toThrow(expect.objectContaining({ code: 'INVENTORY_DUPLICATE', message }));
  });

  test.each([
    [{ name: 'n_9', macs: ['52:54:00:00:09:01'] }, 'HOSTNAME_INVALID', 'new node n_9: "n_9" is not a valid host name'],
    [{ name: 'n9', macs: ['52:54:00'] }, 'MAC_INVALID', 'new node n9 macs[0]: "52:54:00" is not a MAC address'],
    [{ name: 'n9', macs: [] }, 'INVENTORY_INVALID', 'new node n9: node n9 needs at least one MAC address'],
    [{ name: 'n9', macs: ['52:54:00:00:09:01'], group: 'nope' }, 'INVENTORY_INVALID', 'the new entry (n9) group: group "nope" does not exist'],
  ])('rejects %j', (entry, code, message) => {
    expect(() => addNodeToText(TEXT, FILE, entry, readCsv)).toThrow(expect.objectContaining({ code, message: expect.stringContaining(message) }));
  });

  test('an inventory with csv: ranges needs a CSV reader to be validated', () => {
    expect(() => addNodeToText(TEXT, FILE, { name: 'n9', macs: ['52:54:00:00:09:01'] })).toThrow(/nodes\[3\]\.csv: cannot read gpu\.csv: no CSV reader was given/);
  });

  test.each([
    ['an empty flow list', '# new\ncluster:\n  name: c\ngroups: { g: { selector: {} } }\nnodes: []\n', '# new\ncluster:\n  name: c\ngroups: { g: { selector: {} } }\nnodes: [{ name: n1, mac: 52:54:00:00:00:01 }]\n'],
    ['a flow list', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: [ { name: n0 } ]  # flow\n', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: [ { name: n0 }, { name: n1, mac: 52:54:00:00:00:01 } ]  # flow\n'],
    ['an empty nodes:', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:\n# later\n', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:\n  - name: n1\n    mac: 52:54:00:00:00:01\n# later\n'],
    ['a flow list with a trailing comma', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: [\n  { name: n0, mac: 52:54:00:00:00:00 },\n]\n', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: [\n  { name: n0, mac: 52:54:00:00:00:00 }, { name: n1, mac: 52:54:00:00:00:01 }\n]\n'],
    ['an empty nodes: with a comment', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:   # add nodes below\n', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:   # add nodes below\n  - name: n1\n    mac: 52:54:00:00:00:01\n'],
    ['nodes: ~ with a comment', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: ~  # none yet\n', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:  # none yet\n  - name: n1\n    mac: 52:54:00:00:00:01\n'],
    ['no nodes: key', 'cluster: { name: c }\ngroups: { g: { selector: {} } }', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:\n  - name: n1\n    mac: 52:54:00:00:00:01\n'],
    ['an unindented list', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:\n- name: n0\n', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:\n- name: n0\n- name: n1\n  mac: 52:54:00:00:00:01\n'],
  ])('adds to %s', (_what, before, after) => {
    expect(addNodeToText(before, FILE, { name: 'n1', macs: ['52:54:00:00:00:01'] })).toBe(after);
  });
});

describe('importCsvToText', () => {
  test('updates explicit entries in place, appends new ones, keeps comments', () => {
    const sheet = [
      '# delivery 2024-05',
      'name,mac,ip,bmc,rack,slot',
      'head01,52:54:00:00:00:11,,,,', // mac changes, nothing else
      'head02,52:54:00:00:00:02,10.0.0.2,,,', // flow entry gains an ip
      'login01,52:54:00:00:00:03,,10.1.0.33,,', // bmc address changes, macs: list stays a list
      'gpu03,52:54:00:00:02:03,10.0.1.3,,r2,3', // new
    ].join('\n');
    const r = importCsvToText(TEXT, FILE, sheet, 'delivery.csv', readCsv);
    expect(r.updated).toEqual(['head01', 'head02', 'login01']);
    expect(r.added).toEqual(['gpu03']);
    expect(r.text).toBe(
      TEXT.replace('mac: 52:54:00:00:00:01     # onboard', 'mac: 52:54:00:00:00:11     # onboard')
        .replace('{ name: head02, mac: 52:54:00:00:00:02, group: head }', '{ name: head02, mac: 52:54:00:00:00:02, group: head, ip: 10.0.0.2 }')
        .replace('address: 10.1.0.3,', 'address: 10.1.0.33,')
        .replace('# end of file\n', '  - name: gpu03\n    mac: 52:54:00:00:02:03\n    ip: 10.0.1.3\n    rack: r2\n    slot: 3\n# end of file\n'),
    );
    expect(r.text).toContain('# Lab cluster. Hand-edited; keep the comments.\n');
    expect(r.text).toContain('  # The controller.\n');
    const inv = parseInventory(r.text, FILE, readCsv);
    expect(inv.nodes.get('login01')!.bmc).toEqual({ address: '10.1.0.33', kind: 'redfish' });
    expect(inv.nodes.get('gpu03')!.group).toBe('gpu');
  });

  test('rows that change nothing are not reported as updated, but as unchanged (every row is counted)', () => {
    const text = TEXT.replace('mac: 52:54:00:00:00:01 ', 'mac: 525400000001 ');
    const r = importCsvToText(text, FILE, 'name,mac,ip\nhead01,52-54-00-00-00-01,10.0.0.1\nlogin01,5254.0000.0003\n', 'same.csv', readCsv);
    expect(r).toEqual({ text, added: [], updated: [], unchanged: ['head01', 'login01'] });
  });

  test('a second MAC turns mac: into macs:, and missing keys are added as lines', () => {
    const r = importCsvToText(TEXT, FILE, 'name,mac,slot\nhead01,52:54:00:00:00:01 52:54:00:00:00:21,4\n', 'x.csv', readCsv);
    expect(r.text).toContain(
      '  - name: head01\n    macs: [ 52:54:00:00:00:01, 52:54:00:00:00:21 ]     # onboard port 1\n    ip: 10.0.0.1               # aligned comments must stay aligned\n    group: head\n    slot: 4\n  - { name: head02',
    );
  });

  test('a name that belongs to a range is refused with a pointer to the range', () => {
    expect(() => importCsvToText(TEXT, FILE, 'name,mac\ngpu02,52:54:00:00:02:12\n', 'x.csv', readCsv)).toThrow(
      `x.csv:2: gpu02 is declared by ${FILE}:22 nodes[3] range gpu[01-02] (gpu02, gpu.csv:3); put its MAC in that range's csv: file instead of giving it an entry of its own`,
    );
  });

  test('the result is validated: a MAC taken by another node is a duplicate naming both', () => {
    expect(() => importCsvToText(TEXT, FILE, 'name,mac\nhead02,52:54:00:00:00:01\n', 'x.csv', readCsv)).toThrow(
      expect.objectContaining({ code: 'INVENTORY_DUPLICATE', message: `${FILE}:17 nodes[1] (head02) and ${FILE}:13 nodes[0] (head01) both use MAC 52:54:00:00:00:01` }),
    );
  });

  test('a CRLF file stays CRLF: new lines end as the file\'s do', () => {
    const text = '\uFEFF# inv\r\ncluster: { name: c }\r\ngroups: { g: { selector: {} } }\r\nnodes:\r\n  - name: x\r\n    mac: 52:54:00:00:00:09\r\n';
    const out = addNodeToText(text, FILE, { name: 'y', macs: ['52:54:00:00:00:0a'], group: 'g' }, readCsv);
    expect(out.split('\r\n').length - 1).toBe(out.split('\n').length - 1);
    expect(parseInventory(out, FILE, readCsv).nodes.get('y')?.macs).toEqual(['52:54:00:00:00:0a']);
  });

  test('a row that says what the entry says, as typed, changes nothing (rack: 07 is "07", not the number 7)', () => {
    const text = 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:\n  - name: x\n    group: g\n    mac: 52:54:00:00:00:09\n    rack: 07\n    bmc: { address: 10.1.0.9 }\n';
    const r = importCsvToText(text, FILE, 'name,mac,rack,bmc\nx,52:54:00:00:00:09,07,10.1.0.9\n', 'a.csv', readCsv);
    expect(r).toEqual({ text, added: [], updated: [], unchanged: ['x'] });
  });

  test('csv errors name the csv file and line', () => {
    expect(() => importCsvToText(TEXT, FILE, 'name,mac\n\nn9,zz\n', 'x.csv', readCsv)).toThrow('x.csv:3 mac: "zz" is not a MAC address');
  });

  test('a new row the whole inventory refuses is named by its csv line, not by a line of the file it was never written to', () => {
    expect(() => importCsvToText(TEXT, FILE, 'name,mac,group\nn1,52:54:00:00:09:01,\nn2,52:54:00:00:09:02,zz\n', 'a.csv', readCsv)).toThrow(
      'a.csv:3 (n2) group: group "zz" does not exist (groups: gpu, head)',
    );
    expect(() => importCsvToText(TEXT, FILE, 'name,mac,ip\nn1,52:54:00:00:09:01,10.9.9.9\nn2,52:54:00:00:09:02,10.9.9.9\n', 'a.csv', readCsv)).toThrow(
      expect.objectContaining({ code: 'INVENTORY_DUPLICATE', message: 'a.csv:3 (n2) and a.csv:2 (n1) both use IP 10.9.9.9' }),
    );
  });

  test('edits the example inventory with its comments intact', () => {
    const file = 'examples/inventory.yaml';
    const text = readFileSync(file, 'utf8');
    const out = addNodeToText(text, file, { name: 'k3s03', macs: ['52:54:00:00:03:03'], ip: '10.0.3.3', rack: 'r3' }, csvReaderFor(file));
    expect(out.startsWith(text.trimEnd())).toBe(true);
    expect(out).toContain('    ip: 10.0.1.11          # gpu01 gets .11, gpu02 .12, ...\n');
    expect(parseInventory(out, file, csvReaderFor(file)).nodes.get('k3s03')!.group).toBe('k3s');
  });
});

describe('moveNodesToGroupInText', () => {
  const withSelected = TEXT.replace('# end of file\n', '  - name: gpu03\n    mac: 52:54:00:00:02:03\n    rack: r2  # placed by the gpu selector\n# end of file\n');

  test('sets group: in block and flow entries, adds it to a selector-placed one, and leaves every other byte alone', () => {
    const r = moveNodesToGroupInText(withSelected, FILE, ['head01', 'head02', 'gpu03', 'login01'], 'gpu', readCsv);
    expect(r.moved).toEqual([
      { node: 'head01', from: 'head' },
      { node: 'head02', from: 'head' },
      { node: 'gpu03', from: 'gpu' },
      { node: 'login01', from: 'head' },
    ].filter((m) => m.from !== 'gpu'));
    expect(r.text).toBe(
      withSelected
        .replace('    ip: 10.0.0.1               # aligned comments must stay aligned\n    group: head\n', '    ip: 10.0.0.1               # aligned comments must stay aligned\n    group: gpu\n')
        .replace('{ name: head02, mac: 52:54:00:00:00:02, group: head }', '{ name: head02, mac: 52:54:00:00:00:02, group: gpu }')
        .replace('    macs: [52:54:00:00:00:03]\n    group: head\n', '    macs: [52:54:00:00:00:03]\n    group: gpu\n'),
    );
    const inv = parseInventory(r.text, FILE, readCsv);
    expect(['head01', 'head02', 'login01', 'gpu03'].map((n) => inv.nodes.get(n)!.group)).toEqual(['gpu', 'gpu', 'gpu', 'gpu']);
  });

  test('gives a selector-placed node an explicit group, and a flow entry without one gains it', () => {
    const flow = TEXT.replace('# end of file\n', '  - { name: gpu04, mac: 52:54:00:00:02:04, rack: r2 }\n# end of file\n');
    const r1 = moveNodesToGroupInText(withSelected, FILE, ['gpu03'], 'head', readCsv);
    expect(r1.text).toBe(withSelected.replace('    rack: r2  # placed by the gpu selector\n', '    rack: r2  # placed by the gpu selector\n    group: head\n'));
    const r2 = moveNodesToGroupInText(flow, FILE, ['gpu04'], 'head', readCsv);
    expect(r2.text).toBe(flow.replace('{ name: gpu04, mac: 52:54:00:00:02:04, rack: r2 }', '{ name: gpu04, mac: 52:54:00:00:02:04, rack: r2, group: head }'));
    expect(parseInventory(r2.text, FILE, readCsv).nodes.get('gpu04')!.group).toBe('head');
  });

  test('refuses a range member (naming its entry), an unknown group and an unknown node, and changes nothing', () => {
    expect(() => moveNodesToGroupInText(TEXT, FILE, ['head01', 'gpu02'], 'head', readCsv)).toThrow(
      expect.objectContaining({ code: 'INVENTORY_INVALID', message: expect.stringMatching(/^gpu02 is declared by .*:22 nodes\[3\] range gpu\[01-02\] \(gpu02, .*gpu\.csv:3\); give it a group column/) }),
    );
    expect(() => moveNodesToGroupInText(TEXT, FILE, ['head01'], 'k3s', readCsv)).toThrow(expect.objectContaining({ code: 'GROUP_NOT_FOUND', message: `no group "k3s" in ${FILE} (groups: head, gpu)` }));
    expect(() => moveNodesToGroupInText(TEXT, FILE, ['nope01'], 'gpu', readCsv)).toThrow(expect.objectContaining({ code: 'NODE_NOT_FOUND' }));
  });

  test('a node already in the group is not moved, and nothing is rewritten', () => {
    expect(moveNodesToGroupInText(TEXT, FILE, ['head01'], 'head', readCsv)).toEqual({ text: TEXT, moved: [] });
  });
});

describe('removeNodesFromText', () => {
  test('deletes block and flow entries whole, with their trailing comments, and leaves every other byte alone', () => {
    const r = removeNodesFromText(TEXT, FILE, ['head01', 'head02'], readCsv);
    expect(r.removed).toEqual([
      { node: 'head01', entry: `${FILE}:13 nodes[0] (head01)` },
      { node: 'head02', entry: `${FILE}:17 nodes[1] (head02)` },
    ]);
    // The comment line above the first entry stays: it may head a section.
    expect(r.text).toBe(
      TEXT.replace(
        '    mac: 52:54:00:00:00:01     # onboard port 1\n    ip: 10.0.0.1               # aligned comments must stay aligned\n    group: head\n  - { name: head02, mac: 52:54:00:00:00:02, group: head }\n',
        '',
      ).replace('  - name: head01\n', ''),
    );
    expect([...parseInventory(r.text, FILE, readCsv).nodes.keys()]).toEqual(['login01', 'gpu01', 'gpu02']);
  });

  test('a last entry with a nested block map goes up to its last line, and the comment after it stays', () => {
    const text = TEXT.replace('  - range: gpu[01-02]\n    group: gpu\n    csv: gpu.csv\n', '  - name: gpu09\n    mac: 52:54:00:00:02:09\n    group: head\n    bmc:\n      address: 10.1.1.9   # spare BMC\n');
    const r = removeNodesFromText(text, FILE, ['gpu09'], readCsv);
    expect(r.text).toBe(text.replace('  - name: gpu09\n    mac: 52:54:00:00:02:09\n    group: head\n    bmc:\n      address: 10.1.1.9   # spare BMC\n', ''));
    expect(r.text.endsWith('    bmc: { address: 10.1.0.3, kind: redfish }\n# end of file\n')).toBe(true);
  });

  test("an entry's own comment lines after its last key go with it; one at the list's level and after a blank line stay", () => {
    const text = 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:\n  - name: n0\n    mac: 52:54:00:00:00:10\n    # n0: spare, swap in Q3\n      # (really)\n  # the next rack\n  - name: n1\n    mac: 52:54:00:00:00:11\n    # n1 note\n\n    # after a blank line\n';
    expect(removeNodesFromText(text, FILE, ['n0']).text).toBe(
      'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:\n  # the next rack\n  - name: n1\n    mac: 52:54:00:00:00:11\n    # n1 note\n\n    # after a blank line\n',
    );
    expect(removeNodesFromText(text, FILE, ['n1']).text).toBe(
      'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:\n  - name: n0\n    mac: 52:54:00:00:00:10\n    # n0: spare, swap in Q3\n      # (really)\n  # the next rack\n\n    # after a blank line\n',
    );
    const crlf = text.replace(/\n/g, '\r\n');
    expect(removeNodesFromText(crlf, FILE, ['n0']).text).toBe(removeNodesFromText(text, FILE, ['n0']).text.replace(/\n/g, '\r\n'));
  });

  test('a range whose members are all named goes whole; its CSV file is not touched', () => {
    const r = removeNodesFromText(TEXT, FILE, ['gpu01', 'gpu02'], readCsv);
    expect(r.text).toBe(TEXT.replace('  - range: gpu[01-02]\n    group: gpu\n    csv: gpu.csv\n', ''));
    expect(r.removed.map((x) => x.node)).toEqual(['gpu01', 'gpu02']);
  });

  test.each([
    ['the first of a flow list', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: [ { name: n0, mac: 52:54:00:00:00:10 }, { name: n1, mac: 52:54:00:00:00:11 } ]  # flow\n', ['n0'], 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: [ { name: n1, mac: 52:54:00:00:00:11 } ]  # flow\n'],
    ['the last of a flow list', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: [ { name: n0, mac: 52:54:00:00:00:10 }, { name: n1, mac: 52:54:00:00:00:11 } ]  # flow\n', ['n1'], 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: [ { name: n0, mac: 52:54:00:00:00:10 } ]  # flow\n'],
    ['the middle and the tail of a flow list', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: [\n  { name: n0, mac: 52:54:00:00:00:10 },\n  { name: n1, mac: 52:54:00:00:00:11 },\n  { name: n2, mac: 52:54:00:00:00:12 },\n  { name: n3, mac: 52:54:00:00:00:13 },\n]\n', ['n1', 'n3', 'n2'], 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: [\n  { name: n0, mac: 52:54:00:00:00:10 },\n]\n'],
    ['every entry of a flow list', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: [\n  { name: n0, mac: 52:54:00:00:00:10 },\n]\n', ['n0'], 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes: []\n'],
    ['every entry of a block list', 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:   # racked ones\n  - name: n0\n    mac: 52:54:00:00:00:10\n', ['n0'], 'cluster: { name: c }\ngroups: { g: { selector: {} } }\nnodes:   # racked ones\n'],
    ['an unindented list, CRLF', 'cluster: { name: c }\r\ngroups: { g: { selector: {} } }\r\nnodes:\r\n- name: n0\r\n  mac: 52:54:00:00:00:10\r\n- name: n1\r\n  mac: 52:54:00:00:00:11\r\n', ['n0'], 'cluster: { name: c }\r\ngroups: { g: { selector: {} } }\r\nnodes:\r\n- name: n1\r\n  mac: 52:54:00:00:00:11\r\n'],
  ])('removes %s', (_what, before, names, after) => {
    const r = removeNodesFromText(before, FILE, names);
    expect(r.text).toBe(after);
    expect(parseInventory(r.text, FILE).nodes.size).toBe(parseInventory(before, FILE).nodes.size - names.length);
  });

  test('refuses one member of a range, naming the entry and its CSV row, and an unknown node; nothing half-done', () => {
    expect(() => removeNodesFromText(TEXT, FILE, ['head01', 'gpu02'], readCsv)).toThrow(
      expect.objectContaining({
        code: 'INVENTORY_INVALID',
        message: expect.stringMatching(/^gpu02 is declared by .*:22 nodes\[3\] range gpu\[01-02\] \(gpu02, .*gpu\.csv:3\), with gpu01; it cannot be removed alone: narrow or split that range by hand and delete its row .*gpu\.csv:3, then reload/),
      }),
    );
    expect(() => removeNodesFromText(TEXT, FILE, ['head01', 'nope01'], readCsv)).toThrow(expect.objectContaining({ code: 'NODE_NOT_FOUND', message: `no node "nope01" in ${FILE}` }));
  });

  test('a name given twice is removed once', () => {
    const r = removeNodesFromText(TEXT, FILE, ['login01', 'LOGIN01'], readCsv);
    expect(r.removed.map((x) => x.node)).toEqual(['login01']);
    expect(r.text).toBe(TEXT.replace('  - name: login01\n    macs: [52:54:00:00:00:03]\n    group: head\n    bmc: { address: 10.1.0.3, kind: redfish }\n', ''));
  });
});
