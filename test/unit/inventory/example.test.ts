import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { compressHostlist, loadInventory, resolveTargets } from '../../../server/inventory/index.js';

// The sample inventory the README shows and rackseed.yaml points at.
const EXAMPLE = 'examples/inventory.yaml';

test('the example inventory shown in the README loads cleanly', () => {
  const inv = loadInventory(EXAMPLE);
  expect(inv.cluster).toEqual({ name: 'demo', domain: 'cluster.local' });
  expect([...inv.groups.keys()]).toEqual(['head', 'gpu', 'k3s']);
  expect(compressHostlist(inv.nodes.keys())).toBe('gpu[01-04],head01,k3s[01-02]');
  expect([...inv.nodes.values()].map((n) => `${n.name}:${n.group}`)).toEqual([
    'head01:head',
    'gpu01:gpu',
    'gpu02:gpu',
    'gpu03:gpu',
    'gpu04:gpu',
    'k3s01:k3s',
    'k3s02:k3s',
  ]);
  const gpu04 = inv.nodes.get('gpu04')!;
  expect(gpu04).toMatchObject({ ip: '10.0.1.14', slot: 13, macs: ['52:54:00:00:02:04'], uefiLoader: 'ipxe.efi', installedBoot: 'kernel', leaseSeconds: 172800 });
  expect(gpu04.kernelArgs).toEqual(['console=ttyS0,115200', 'iommu=pt']);
  expect(inv.nodes.get('k3s01')!.macs).toEqual(['52:54:00:00:03:01', '52:54:00:00:03:11']);
  expect(inv.nodes.get('k3s01')!.data).toEqual({ k3s: { role: 'server' } });
  expect(inv.nodes.get('k3s02')!.data).toEqual({ k3s: { role: 'agent' } });
  expect(resolveTargets(inv, ['role:slurm-compute']).map((n) => n.name)).toEqual(['gpu01', 'gpu02', 'gpu03', 'gpu04']);
});

test('the README shows the example inventory as it is', () => {
  const readme = readFileSync('README.md', 'utf8');
  const shown = /The sample `examples\/inventory\.yaml`[^\n]*\n\n```yaml\n([\s\S]*?)```\n/.exec(readme);
  expect(shown?.[1]).toBe(readFileSync(EXAMPLE, 'utf8'));
});

test('the example gives the GPU nodes a UEFI BMC boot mode', () => {
  expect(loadInventory(EXAMPLE).nodes.get('gpu02')!.bmc).toEqual({ address: '10.1.1.12', kind: 'ipmi', bootMode: 'uefi' });
});

test('a missing inventory file is a clear error', () => {
  expect(() => loadInventory('test/fixtures/inventory/nope.yaml')).toThrow(/cannot read inventory test\/fixtures\/inventory\/nope\.yaml/);
});
