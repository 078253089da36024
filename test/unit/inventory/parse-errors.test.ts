import { describe, expect, test } from 'vitest';
import { parseInventory } from '../../../server/inventory/index.js';
import { isRackseedError, type RackseedError } from '../../../server/model/errors.js';
import { csvFiles, FILE, GROUPS, withNodes } from '../../fixtures/inventory/inventories.js';

function failure(text: string, readCsv?: (rel: string) => string): RackseedError {
  try {
    parseInventory(text, FILE, readCsv);
  } catch (e) {
    if (isRackseedError(e)) return e;
    throw e;
  }
  throw new Error('expected the inventory to be rejected');
}

/** GROUPS is 13 lines; nodes: is line 14, so the first node entry starts on line 15. */
const FIRST_NODE_LINE = GROUPS.split('\n').length + 1;

describe('MAC spellings', () => {
  test.each([
    ['52:54:00:aa:bb:cc', '52:54:00:aa:bb:cc'],
    ['52:54:00:AA:BB:CC', '52:54:00:aa:bb:cc'],
    ['52-54-00-AA-BB-CC', '52:54:00:aa:bb:cc'],
    ['5254.00aa.bbcc', '52:54:00:aa:bb:cc'],
    ['525400aabbcc', '52:54:00:aa:bb:cc'],
    ['"525400123456"', '52:54:00:12:34:56'],
    // Unquoted, YAML reads these as numbers; the source text must survive, leading zeros included.
    ['525400123456', '52:54:00:12:34:56'],
    ['001122334455', '00:11:22:33:44:55'],
    ['2:4:0:a:b:c', '02:04:00:0a:0b:0c'],
  ])('%s', (spelling, canonical) => {
    const inv = parseInventory(withNodes(`  - { name: n1, mac: ${spelling}, group: head }\n`), FILE);
    expect(inv.nodes.get('n1')?.macs).toEqual([canonical]);
  });

  test.each(['52:54:00:aa:bb', '52:54:00:aa:bb:cc:dd', '52:54:00:aa:bb:zz', '52:54-00:aa:bb:cc', 'aabb.ccdd', '525400aabbc', 'true'])('rejects %s', (spelling) => {
    const err = failure(withNodes(`  - name: n1\n    group: head\n    mac: ${spelling}\n`));
    expect(err.code).toBe('MAC_INVALID');
    expect(err.message).toBe(`${FILE}:${FIRST_NODE_LINE + 2} nodes[0].mac: "${spelling}" is not a MAC address (expected e.g. 52:54:00:12:34:56)`);
  });

  test.each([
    ['ff:ff:ff:ff:ff:ff', 'is the broadcast address'],
    ['01:00:5e:00:00:01', 'is a multicast address (odd first octet)'],
    ['33:33:00:00:00:01', 'is a multicast address (odd first octet)'],
    ['00:00:00:00:00:00', 'is all zeros'],
  ])('refuses %s, which no network card has (DHCP could never match it)', (mac, problem) => {
    const err = failure(withNodes(`  - name: n1\n    group: head\n    mac: "${mac}"\n`));
    expect(err.code).toBe('MAC_INVALID');
    expect(err.message).toMatch(new RegExp(`^${FILE}:${FIRST_NODE_LINE + 2} nodes\\[0\\]\\.mac: "${mac}" ${problem.replace(/[()]/g, '\\$&')}`));
  });

  test('a locally administered MAC (QEMU 52:54:00, 02:...) is a card\'s', () => {
    const inv = parseInventory(withNodes('  - { name: n1, mac: "02:00:00:00:00:01", group: head }\n'), FILE);
    expect(inv.nodes.get('n1')?.macs).toEqual(['02:00:00:00:00:01']);
  });

  test('a bad MAC in a macs: list names its index', () => {
    const err = failure(withNodes(`  - name: n1\n    group: head\n    macs:\n      - 52:54:00:00:00:01\n      - nope\n`));
    expect(err.code).toBe('MAC_INVALID');
    expect(err.message).toMatch(new RegExp(`^${FILE}:${FIRST_NODE_LINE + 4} nodes\\[0\\]\\.macs\\[1\\]: "nope"`));
  });
});

describe('names Slurm reserves', () => {
  test('a group of slurm-compute nodes named default (any case) is refused at its key: Slurm reads PartitionName=DEFAULT as defaults', () => {
    const text = 'cluster: { name: c }\ngroups:\n  Default:\n    roles: [base, slurm-compute]\nnodes:\n  - { name: cn01, mac: 52:54:00:00:00:01, group: Default }\n';
    expect(failure(text).message).toBe(`${FILE}:3 groups.Default: group "Default" holds slurm-compute nodes (cn01), and Slurm reserves the partition name DEFAULT for default values: rename the group`);
    // Without Slurm compute nodes it is just a name.
    expect(parseInventory(text.replace('base, slurm-compute', 'base'), FILE).groups.has('Default')).toBe(true);
  });
});

describe('BMC boot mode', () => {
  test('bmc.boot_mode reaches every node of a range; unset stays unset', () => {
    const inv = parseInventory(
      withNodes('  - range: n[1-2]\n    group: gpu\n    bmc: { address: 10.1.1.1, boot_mode: uefi }\n  - name: h1\n    group: head\n    bmc: { address: 10.1.0.1, kind: redfish }\n'),
      FILE,
    );
    expect(inv.nodes.get('n2')!.bmc).toEqual({ address: '10.1.1.2', kind: 'ipmi', bootMode: 'uefi' });
    expect(inv.nodes.get('h1')!.bmc).toEqual({ address: '10.1.0.1', kind: 'redfish' });
  });
});

describe('config errors name the file, line and key path', () => {
  test.each([
    {
      what: 'a bad host name',
      nodes: '  - name: head_01\n    group: head\n',
      code: 'HOSTNAME_INVALID',
      message: `${FILE}:${FIRST_NODE_LINE} nodes[0].name: "head_01" is not a valid host name`,
    },
    {
      what: 'an unknown key (a typo) with a suggestion',
      nodes: '  - name: head01\n    group: head\n    mca: 52:54:00:00:00:01\n',
      code: 'INVENTORY_INVALID',
      message: `${FILE}:${FIRST_NODE_LINE + 2} nodes[0].mca: unknown key "mca" (did you mean "mac"?`,
    },
    {
      what: 'a missing group',
      nodes: '  - name: head01\n    mac: 52:54:00:00:00:01\n    group: hed\n',
      code: 'INVENTORY_INVALID',
      message: `${FILE}:${FIRST_NODE_LINE + 2} nodes[0].group: group "hed" does not exist (groups: gpu, head)`,
    },
    {
      what: 'a bad range',
      nodes: '  - name: head01\n    group: head\n  - range: gpu[04-01]\n    group: gpu\n',
      code: 'HOSTLIST_INVALID',
      message: `${FILE}:${FIRST_NODE_LINE + 2} nodes[1].range: hostlist "gpu[04-01]": range "04-01" is reversed`,
    },
    {
      what: 'a range that makes bad host names',
      nodes: '  - range: gpu_[1-2]\n    group: gpu\n',
      code: 'HOSTNAME_INVALID',
      message: `${FILE}:${FIRST_NODE_LINE} nodes[0].range: "gpu_1" (from gpu_[1-2]) is not a valid host name`,
    },
    {
      what: 'a bad IPv4 address',
      nodes: '  - name: head01\n    group: head\n    ip: 10.0.0.256\n',
      code: 'INVENTORY_INVALID',
      message: `${FILE}:${FIRST_NODE_LINE + 2} nodes[0].ip: "10.0.0.256" is not an IPv4 address`,
    },
    {
      what: 'an IPv4 address with leading zeros',
      nodes: '  - name: head01\n    group: head\n    ip: 10.0.0.010\n',
      code: 'INVENTORY_INVALID',
      message: `nodes[0].ip: "10.0.0.010" is not an IPv4 address`,
    },
    {
      what: 'mac and macs together',
      nodes: '  - name: head01\n    group: head\n    mac: 52:54:00:00:00:01\n    macs: [52:54:00:00:00:02]\n',
      code: 'INVENTORY_INVALID',
      message: `${FILE}:${FIRST_NODE_LINE + 3} nodes[0].macs: use either mac: (one address) or macs: (a list), not both`,
    },
    {
      what: 'a wrong type',
      nodes: '  - name: head01\n    group: head\n    slot: first\n',
      code: 'INVENTORY_INVALID',
      message: `${FILE}:${FIRST_NODE_LINE + 2} nodes[0].slot: expected number, got string`,
    },
    {
      what: 'a bad BMC boot mode',
      nodes: '  - name: head01\n    group: head\n    bmc:\n      address: 10.1.0.1\n      boot_mode: efi\n',
      code: 'INVENTORY_INVALID',
      message: `${FILE}:${FIRST_NODE_LINE + 4} nodes[0].bmc.boot_mode: `,
    },
    {
      what: 'a node that is not a map',
      nodes: '  - head01\n',
      code: 'INVENTORY_INVALID',
      message: `${FILE}:${FIRST_NODE_LINE} nodes[0]: expected a node entry`,
    },
    {
      what: 'an unquoted console argument split by YAML',
      nodes: '  - name: head01\n    group: head\n    overrides: { kernel_args: [console=ttyS0,115200] }\n',
      code: 'INVENTORY_INVALID',
      message: `${FILE}:${FIRST_NODE_LINE + 2} nodes[0].overrides.kernel_args[1]: kernel argument 115200 is a bare number`,
    },
  ])('$what', ({ nodes, code, message }) => {
    const err = failure(withNodes(nodes));
    expect(err.code).toBe(code);
    expect(err.message).toContain(message);
  });

  test.each([
    {
      what: 'an unknown group key',
      text: 'cluster: { name: t }\ngroups:\n  head:\n    kernel_arg: [quiet]\n',
      message: `${FILE}:4 groups.head.kernel_arg: unknown key "kernel_arg" (did you mean "kernel_args"?`,
    },
    {
      what: 'a lease shorter than provisioning',
      text: 'cluster: { name: t }\ngroups:\n  head:\n    lease_seconds: 600\n',
      message: `${FILE}:4 groups.head.lease_seconds: must be at least 3600 seconds`,
    },
    {
      what: 'an unknown loader',
      text: 'cluster: { name: t }\ngroups:\n  head:\n    uefi_loader: grub.efi\n',
      message: `${FILE}:4 groups.head.uefi_loader: Invalid option: expected one of "ipxe.efi"|"snponly.efi"`,
    },
    {
      what: 'rest before the last partition',
      text: 'cluster: { name: t }\ngroups:\n  head:\n    disk:\n      device: /dev/sda\n      partitions:\n        - { mount: /, size: rest, fs: ext4 }\n        - { mount: swap, size: 8G, fs: swap }\n',
      message: `${FILE}:7 groups.head.disk.partitions[0].size: "rest" takes the remainder of the disk`,
    },
    {
      what: 'a /dev/disk/by-path device (the installer has no udev)',
      text: 'cluster: { name: t }\ngroups:\n  head:\n    disk:\n      device: /dev/disk/by-path/pci-0000:00:17.0-ata-1\n      partitions:\n        - { mount: /, size: rest, fs: ext4 }\n',
      message: `${FILE}:5 groups.head.disk.device: /dev/disk/by-path/pci-0000:00:17.0-ata-1: the installer has no udev`,
    },
    {
      what: 'a size without its unit',
      text: 'cluster: { name: t }\ngroups:\n  head:\n    disk:\n      device: /dev/sda\n      partitions:\n        - { mount: /boot, size: "512", fs: ext4 }\n        - { mount: /, size: rest, fs: ext4 }\n',
      message: `${FILE}:7 groups.head.disk.partitions[0].size: expected a size with its unit such as 512M or 8G, or "rest"`,
    },
    {
      what: 'a mount point with a trailing slash',
      text: 'cluster: { name: t }\ngroups:\n  head:\n    disk:\n      device: /dev/sda\n      partitions:\n        - { mount: /, size: 20G, fs: ext4 }\n        - { mount: /scratch/, size: rest, fs: ext4 }\n',
      message: `${FILE}:8 groups.head.disk.partitions[1].mount: expected an absolute mount point without a trailing "/"`,
    },
    {
      what: 'a layout with nothing mounted at /',
      text: 'cluster: { name: t }\ngroups:\n  head:\n    disk:\n      device: /dev/sda\n      partitions:\n        - { mount: /data, size: rest, fs: ext4 }\n',
      message: `${FILE}:6 groups.head.disk.partitions: no partition is mounted at /`,
    },
    {
      what: 'a vfat root',
      text: 'cluster: { name: t }\ngroups:\n  head:\n    disk:\n      device: /dev/sda\n      partitions:\n        - { mount: /, size: rest, fs: vfat }\n',
      message: `${FILE}:7 groups.head.disk.partitions[0].fs: the root file system the installer unpacks the image into is ext4`,
    },
    {
      what: 'five partitions on a dos table',
      text: `cluster: { name: t }\ngroups:\n  head:\n    disk:\n      device: /dev/sda\n      table: dos\n      partitions:\n${['/a', '/b', '/c', '/d'].map((m) => `        - { mount: ${m}, size: 1G, fs: ext4 }\n`).join('')}        - { mount: /, size: rest, fs: ext4 }\n`,
      message: `${FILE}:7 groups.head.disk.partitions: a dos table holds at most 4 partitions here (primary ones; use table: gpt)`,
    },
    {
      what: 'swap mounted as a file system',
      text: 'cluster: { name: t }\ngroups:\n  head:\n    disk:\n      device: /dev/sda\n      partitions:\n        - { mount: /swap, size: 1G, fs: swap }\n        - { mount: /, size: rest, fs: ext4 }\n',
      message: `${FILE}:7 groups.head.disk.partitions[0].mount: swap is both the file system and the mount point, or neither`,
    },
    {
      what: 'a kernel argument GRUB cannot take as it is (installed_boot: local)',
      text: 'cluster: { name: t }\ngroups:\n  head:\n    kernel_args: [quiet, "init=/bin/sh -c $x"]\n',
      message: `${FILE}:4 groups.head.kernel_args[1]: a kernel argument is written into iPXE scripts and GRUB's configuration as it is`,
    },
    {
      // iPXE writes it on every boot of the installed OS: it has no quoting either.
      what: 'a kernel argument iPXE cannot take as it is (installed_boot: kernel)',
      text: 'cluster: { name: t }\ngroups:\n  k:\n    installed_boot: kernel\n    kernel_args: ["acpi_osi=!Linux"]\n',
      message: `${FILE}:5 groups.k.kernel_args[0]: a kernel argument is written into iPXE scripts`,
    },
    {
      what: "a node override's kernel argument with a space",
      text: 'cluster: { name: t }\ngroups:\n  head: {}\nnodes:\n  - name: n1\n    group: head\n    overrides: { kernel_args: [ok, "quiet splash"] }\n',
      message: `${FILE}:7 nodes[0].overrides.kernel_args[1]: a kernel argument is written into iPXE scripts`,
    },
    {
      what: 'a file system the installer cannot make',
      text: 'cluster: { name: t }\ngroups:\n  head:\n    disk:\n      device: /dev/sda\n      partitions:\n        - { mount: /, size: rest, fs: xfs }\n',
      message: `${FILE}:7 groups.head.disk.partitions[0].fs: the installer makes ext4, vfat, swap file systems`,
    },
    {
      what: 'a missing cluster name',
      text: 'cluster:\n  domain: example.org\n',
      message: `${FILE}:1 cluster.name: missing (expected string)`,
    },
    {
      what: 'an unknown top-level key',
      text: 'cluster: { name: t }\nnode: []\n',
      message: `${FILE}:2 node: unknown key "node" (did you mean "nodes"?`,
    },
    {
      what: 'a YAML syntax error',
      text: 'cluster:\n  name: t\n  name: u\n',
      message: `${FILE}:3: YAML syntax error: Map keys must be unique`,
    },
    {
      what: 'a node without a group that no selector matches',
      text: 'cluster: { name: t }\ngroups:\n  gpu: { selector: { rack: r2 } }\nnodes:\n  - name: n1\n    rack: r9\n',
      message: `${FILE}:5 nodes[0] (n1): no group: given and no group's selector matches its labels (rack=r9)`,
    },
    {
      what: 'an unquoted driver pin, which YAML reads as another number',
      text: 'cluster: { name: t }\ngroups:\n  gpu:\n    data:\n      nvidia: { driver: 440.100 }\n',
      message: `${FILE}:5 groups.gpu.data.nvidia.driver: nvidia.driver must be a quoted version: YAML reads 440.100 as the number 440.1, which names another version (440.100 would pin 440.1); write '440.100'`,
    },
    {
      what: 'an unquoted CUDA pin in a node override',
      text: 'cluster: { name: t }\ngroups:\n  gpu: {}\nnodes:\n  - name: n1\n    group: gpu\n    overrides:\n      data:\n        nvidia:\n          cuda: 12.10\n',
      message: `${FILE}:10 nodes[0].overrides.data.nvidia.cuda: nvidia.cuda must be a quoted version: YAML reads 12.10 as the number 12.1`,
    },
    {
      what: 'an empty file',
      text: '# nothing yet\n',
      message: `${FILE}: the file is empty`,
    },
  ])('$what', ({ text, message }) => {
    const err = failure(text);
    expect(err.code).toBe('INVENTORY_INVALID');
    expect(err.message).toContain(message);
  });

  test('the same argument is fine for installed_boot: kernel (iPXE escapes it), and usual layouts load', () => {
    const inv = parseInventory(
      'cluster: { name: t }\ngroups:\n  k:\n    installed_boot: kernel\n    kernel_args: ["console=ttyS0,115200n8", "rd.driver.blacklist=nouveau"]\n  l:\n    disk:\n      device: /dev/nvme0n1\n      table: dos\n      partitions:\n        - { mount: /boot/efi, size: 512M, fs: vfat }\n        - { mount: swap, size: 8G, fs: swap }\n        - { mount: /, size: rest, fs: ext4 }\n',
      FILE,
    );
    expect(inv.groups.get('k')?.kernelArgs).toEqual(['console=ttyS0,115200n8', 'rd.driver.blacklist=nouveau']);
    expect(inv.groups.get('l')?.disk?.partitions).toHaveLength(3);
  });

  test('quoted version pins and other numbers in free-form data are kept as written', () => {
    const inv = parseInventory("cluster: { name: t }\ngroups:\n  gpu:\n    data:\n      nvidia: { driver: '440.100', cuda: '12.10' }\n      slurm: { cpus: 64 }\n", FILE);
    expect(inv.groups.get('gpu')?.data).toEqual({ nvidia: { driver: '440.100', cuda: '12.10' }, slurm: { cpus: 64 } });
  });

  test('a csv file that cannot be read is reported at the csv: key', () => {
    const err = failure(withNodes('  - range: gpu[1-2]\n    group: gpu\n    csv: missing.csv\n'), csvFiles({}));
    expect(err.message).toBe(`${FILE}:${FIRST_NODE_LINE + 2} nodes[0].csv: cannot read missing.csv: ENOENT: no such file missing.csv`);
  });
});

describe('duplicates name both entries', () => {
  const nodes = [
    '  - name: head01', //                      +0
    '    group: head',
    '    mac: 52:54:00:00:00:01',
    '    ip: 10.0.0.1',
    '  - range: gpu[001-004]', //               +4
    '    group: gpu',
    '    ip: 10.0.1.1',
    '    csv: gpu.csv',
  ].join('\n');
  const csv = 'name,mac\ngpu001,52:54:00:00:01:01\ngpu002,52:54:00:00:01:02\ngpu003,52:54:00:aa:bb:cc\n';
  const L = FIRST_NODE_LINE;

  test.each([
    {
      what: 'MAC',
      extra: '  - name: login01\n    group: head\n    mac: 52-54-00-AA-BB-CC\n',
      message: `${FILE}:${L + 8} nodes[2] (login01) and ${FILE}:${L + 4} nodes[1] range gpu[001-004] (gpu003, gpu.csv:4) both use MAC 52:54:00:aa:bb:cc`,
    },
    {
      what: 'IP',
      extra: '  - name: login01\n    group: head\n    ip: 10.0.1.3\n',
      message: `${FILE}:${L + 8} nodes[2] (login01) and ${FILE}:${L + 4} nodes[1] range gpu[001-004] (gpu003, gpu.csv:4) both use IP 10.0.1.3`,
    },
    {
      what: 'name',
      extra: '  - name: gpu003\n    group: gpu\n',
      message: `${FILE}:${L + 8} nodes[2] (gpu003) and ${FILE}:${L + 4} nodes[1] range gpu[001-004] (gpu003, gpu.csv:4) both declare node gpu003`,
    },
    {
      what: 'name, differing only in case',
      extra: '  - name: HEAD01\n    group: head\n',
      message: `${FILE}:${L + 8} nodes[2] (HEAD01) and ${FILE}:${L} nodes[0] (head01) both declare node HEAD01`,
    },
    {
      what: 'IP of a BMC',
      extra: '  - name: login01\n    group: head\n    bmc: { address: 10.0.0.1 }\n',
      message: `${FILE}:${L + 8} nodes[2] (login01) and ${FILE}:${L} nodes[0] (head01) both use IP 10.0.0.1 (bmc.address of login01, ip of head01)`,
    },
    {
      what: 'BMC host name, differing only in case',
      extra: '  - name: login01\n    group: head\n    bmc: { address: bmc-a.mgmt }\n  - name: login02\n    group: head\n    bmc: { address: BMC-A.mgmt }\n',
      message: `${FILE}:${L + 11} nodes[3] (login02) and ${FILE}:${L + 8} nodes[2] (login01) both use BMC BMC-A.mgmt`,
    },
    {
      what: 'MAC within one node',
      extra: '  - name: login01\n    group: head\n    macs: [52:54:00:00:00:09, 5254.0000.0009]\n',
      message: `${FILE}:${L + 8} nodes[2] (login01) lists MAC 52:54:00:00:00:09 twice`,
    },
  ])('$what', ({ extra, message }) => {
    const err = failure(withNodes(`${nodes}\n${extra}`), csvFiles({ 'gpu.csv': csv }));
    expect(err.code).toBe('INVENTORY_DUPLICATE');
    expect(err.message).toBe(message);
  });

  test('details carry both entries for the API', () => {
    const err = failure(withNodes(`${nodes}\n  - name: gpu003\n    group: gpu\n`), csvFiles({ 'gpu.csv': csv }));
    expect(err.details.entries).toEqual([
      { name: 'gpu003', file: FILE, line: L + 8, index: 2 },
      { name: 'gpu003', file: FILE, line: L + 4, index: 1, csv: { file: 'gpu.csv', line: 4 } },
    ]);
  });

  test('two MACs in one csv', () => {
    const dup = 'name,mac\ngpu001,52:54:00:00:01:01\ngpu002,52:54:00:00:01:01\n';
    const err = failure(withNodes(nodes), csvFiles({ 'gpu.csv': dup }));
    expect(err.message).toBe(
      `${FILE}:${L + 4} nodes[1] range gpu[001-004] (gpu002, gpu.csv:3) and ${FILE}:${L + 4} nodes[1] range gpu[001-004] (gpu001, gpu.csv:2) both use MAC 52:54:00:00:01:01`,
    );
  });
});
