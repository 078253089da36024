import { describe, expect, test } from 'vitest';
import { parseCsv, parseNodeCsv } from '../../../server/inventory/index.js';

describe('parseCsv', () => {
  test('header, quotes, blank lines and comments', () => {
    const text = '\uFEFF# sheet\nName, MAC ,note\n\n  # skipped\n"a,b", "x ""y""" ,plain \r\nc,d\n';
    expect(parseCsv(text, 's.csv')).toEqual({
      header: ['name', 'mac', 'note'],
      records: [
        { line: 5, fields: { name: 'a,b', mac: 'x "y"', note: 'plain' } },
        { line: 6, fields: { name: 'c', mac: 'd' } },
      ],
    });
  });

  test.each([
    ['', 's.csv:1: no header row'],
    ['a,b\n1,2,3\n', 's.csv:2: 3 fields but the header has 2 columns'],
    ['a,b\n"1,2\n', 's.csv:2: unterminated quoted field'],
    ['a,b\n"1"x,2\n', 's.csv:2: text after a closing quote'],
    ['a,b\n1"2,3\n', 's.csv:2: a quote inside an unquoted field'],
    ['a,a\n', 's.csv:1: column "a" appears twice'],
    ['a,,b\n', 's.csv:1: empty column name'],
  ])('rejects %j', (text, message) => {
    expect(() => parseCsv(text, 's.csv')).toThrow(expect.objectContaining({ code: 'CSV_INVALID', message: expect.stringContaining(message) }));
  });
});

describe('parseNodeCsv', () => {
  test('typed rows; several MACs in one field', () => {
    const rows = parseNodeCsv('name,mac,ip,bmc,rack,slot,group\nn1,"52:54:00:00:00:01;5254.0000.0002",10.0.0.1,n1-bmc,r1,7,gpu\nn2,525400000003\n', 'm.csv');
    expect(rows).toEqual([
      { file: 'm.csv', line: 2, name: 'n1', macs: ['52:54:00:00:00:01', '52:54:00:00:00:02'], ip: '10.0.0.1', bmc: 'n1-bmc', rack: 'r1', slot: 7, group: 'gpu' },
      { file: 'm.csv', line: 3, name: 'n2', macs: ['52:54:00:00:00:03'] },
    ]);
  });

  test.each([
    ['name,mac,serial\n', 'CSV_INVALID', 'm.csv:1: unknown column "serial"'],
    ['name,ip\n', 'CSV_INVALID', 'm.csv:1: the header has no "mac" column'],
    ['name,mac\nn_1,525400000001\n', 'HOSTNAME_INVALID', 'm.csv:2 name: "n_1" is not a valid host name'],
    ['name,mac\nn1,52:54\n', 'MAC_INVALID', 'm.csv:2 mac: "52:54" is not a MAC address'],
    ['name,mac\nn1,ff:ff:ff:ff:ff:ff\n', 'MAC_INVALID', 'm.csv:2 mac: "ff:ff:ff:ff:ff:ff" is the broadcast address'],
    ['name,mac\nn1,\n', 'CSV_INVALID', 'm.csv:2: empty mac for n1'],
    ['name,mac,ip\nn1,525400000001,10.0.0\n', 'CSV_INVALID', 'm.csv:2: ip "10.0.0" is not an IPv4 address'],
    ['name,mac,slot\nn1,525400000001,x\n', 'CSV_INVALID', 'm.csv:2: slot "x" is not a whole number'],
    ['name,mac\nn1,525400000001\n\nN1,525400000002\n', 'CSV_INVALID', 'm.csv:4: N1 already appears on line 2'],
  ])('rejects %j', (text, code, message) => {
    expect(() => parseNodeCsv(text, 'm.csv')).toThrow(expect.objectContaining({ code, message: expect.stringContaining(message) }));
  });
});
