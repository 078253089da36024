import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../server/model/lifecycle.js';
import type { ObservedStore } from '../../server/store/types.js';
import type { InstallerBuild } from '../../server/images/installer-build.js';
import { debugfsOnDisk, ensureInstaller, initramfsEntries, installInstallerInto, writeTinyImage, type TinyImage } from '../support/installer.js';
import { fullDhcpConfig, ProvisioningLab } from '../support/lab.js';
import { waitForEvent } from '../support/netboot.js';
import { requireBinary } from '../support/process-output.js';
import { waitFor } from '../support/wait.js';

/**
 * The installer as built by `rackseed installer build`, then booted for real: a QEMU machine with a blank disk PXE
 * boots from rackseed (full DHCP, in a namespace), installs a tiny image over the torrent's web seed / HTTP, reports
 * every stage and reboots; the disk is then read back. A second machine gets an image whose manifest lies about its
 * sha256 and must fail in `verify` and power off instead of rebooting.
 */
const SERVER = '10.0.0.1';
const GOOD = { name: 'inst01', mac: '52:54:00:e3:00:01', ip: '10.0.0.41' };
const BAD = { name: 'inst02', mac: '52:54:00:e3:00:02', ip: '10.0.0.42' };
/** A layout larger than its 128 MiB disk: sfdisk shrinks GPT partitions that do not fit, and exits 0. */
const TIGHT = { name: 'inst03', mac: '52:54:00:e3:00:03', ip: '10.0.0.43' };
/** A used machine to be wiped: its disk holds a GPT and a file system past the quick wipe's 16 MiB edges. */
const WIPE = { name: 'inst04', mac: '52:54:00:e3:00:04', ip: '10.0.0.44' };

const inventory = `cluster:
  name: installer
groups:
  tiny:
    image: tiny
    kernel_args: [console=ttyS0, panic=-1]
    installed_boot: kernel
    disk:
      device: /dev/vda
      partitions:
        - { mount: /boot/efi, size: 34M, fs: vfat }
        - { mount: swap, size: 16M, fs: swap }
        - { mount: /, size: rest, fs: ext4 }
  liar:
    image: tiny-bad
    kernel_args: [console=ttyS0, panic=-1]
    disk:
      device: /dev/vda
      partitions:
        - { mount: /, size: rest, fs: ext4 }
  tight:
    image: tiny
    kernel_args: [console=ttyS0, panic=-1]
    disk:
      device: /dev/vda
      partitions:
        - { mount: swap, size: 16M, fs: swap }
        - { mount: /, size: 256M, fs: ext4 }
        - { mount: /data, size: rest, fs: ext4 }
nodes:
  - { name: ${TIGHT.name}, mac: "${TIGHT.mac}", ip: ${TIGHT.ip}, group: tight }
  - { name: ${GOOD.name}, mac: "${GOOD.mac}", ip: ${GOOD.ip}, group: tiny }
  - { name: ${BAD.name}, mac: "${BAD.mac}", ip: ${BAD.ip}, group: liar }
  - { name: ${WIPE.name}, mac: "${WIPE.mac}", ip: ${WIPE.ip}, group: tiny }
`;

let build: InstallerBuild;
let lab: ProvisioningLab;
let store: ObservedStore;
let image: TinyImage;

describe('installer build', () => {
  beforeAll(async () => {
    build = await ensureInstaller();
  }, 300_000);

  it('is a Debian kernel plus an initramfs holding the tools, their libraries, the modules and the scripts', () => {
    expect(build.kernelPackage).toMatch(/^linux-image-[0-9.]+-[0-9]+-amd64=/);
    const names = new Set(initramfsEntries(build.initrd).map((e) => e.name));
    for (const f of [
      'init', 'bin/busybox', 'bin/sh', 'sbin/udhcpc', 'usr/bin/aria2c', 'usr/sbin/sfdisk', 'usr/sbin/mkfs.ext4', 'usr/sbin/mkfs.vfat',
      'usr/bin/tar', 'usr/bin/zstd', 'usr/bin/sha256sum', 'usr/sbin/wipefs', 'lib/rackseed/wipe.sh', 'lib/x86_64-linux-gnu/libblkid.so.1', 'etc/mke2fs.conf', 'etc/rackseed-modules',
      'lib/rackseed/common.sh', 'lib/rackseed/plan.sh', 'lib/rackseed/disk.sh', 'lib/rackseed/fetch.sh', 'lib/rackseed/identity.sh',
      'lib/rackseed/udhcpc.script', 'lib/rackseed/aria2-done.sh', 'lib64/ld-linux-x86-64.so.2', 'lib/x86_64-linux-gnu/libaria2.so.0',
      'lib/x86_64-linux-gnu/libfdisk.so.1', 'lib/x86_64-linux-gnu/libext2fs.so.2', 'lib/x86_64-linux-gnu/libacl.so.1',
    ]) {
      expect(names, f).toContain(f);
    }
    const modules = [...names].filter((n) => n.endsWith('.ko')).map((n) => path.basename(n, '.ko'));
    for (const m of ['e1000', 'virtio_net', 'virtio_blk', 'virtio_pci', 'ahci', 'sd_mod', 'nvme', 'ext4', 'vfat', 'jbd2', 'mbcache', 'libata', 'scsi_mod']) {
      expect(modules, m).toContain(m);
    }
    // Load order: every module comes after the ones it depends on.
    const order = build.modules.map((m) => path.basename(m, '.ko'));
    expect(order.indexOf('jbd2')).toBeLessThan(order.indexOf('ext4'));
    expect(order.indexOf('libata')).toBeLessThan(order.indexOf('ahci'));
    // GNU tar, not busybox's applet (xattrs and ACLs).
    const tar = initramfsEntries(build.initrd).find((e) => e.name === 'usr/bin/tar')!;
    expect(tar.mode & 0o170000).toBe(0o100000);
  });

  it('is idempotent: a second build with the same inputs is skipped', async () => {
    const { buildInstaller } = await import('../../server/images/installer-build.js');
    const again = await buildInstaller({ outDir: path.dirname(build.kernel) });
    expect(again.cached).toBe(true);
    expect(again.initrdBytes).toBe(build.initrdBytes);
  });
});

describe('installer in a machine', () => {
  beforeAll(async () => {
    requireBinary('qemu-system-x86_64', 'apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils ipxe-qemu ovmf');
    build = await ensureInstaller();
    lab = new ProvisioningLab(SERVER);
    await lab.startServer({ inventory, config: fullDhcpConfig(lab, '10.0.0.0/24'), waitFor: [/DHCP listening/, /tftp: listening/] });
    installInstallerInto(lab.dataDir, build);
    image = await writeTinyImage(lab.dataDir, lab.baseUrl, 'tiny');
    await writeTinyImage(lab.dataDir, lab.baseUrl, 'tiny-bad', { corruptManifest: true });
    await lab.rescanImages('tiny-bad');
    store = await lab.openStore();
  }, 300_000);

  afterAll(async () => {
    await lab?.teardown();
  });

  it('installs the image, reports every stage, and reboots', async () => {
    const started = Date.now();
    const vm = await lab.boot({ name: GOOD.name, mac: GOOD.mac, firmware: 'bios', diskMiB: 256, diskFormat: 'raw', memoryMiB: 1024 });
    await vm.waitForSerial(/RACKSEED-INSTALLER: start/, 120_000);
    const atInit = Date.now();
    await vm.waitForSerial(/RACKSEED-INSTALLER: reboot/, 240_000);
    await vm.waitForExit(30_000);
    const done = Date.now();
    console.log(`install timings: PXE to /init ${((atInit - started) / 1000).toFixed(1)} s, /init to reboot ${((done - atInit) / 1000).toFixed(1)} s`);

    const events = await waitForEvent(store, GOOD.name, 'installed', undefined, 10_000);
    const stages = events.flatMap((e) => (e.event.type === 'stage' ? [e.event.stage] : []));
    for (const s of ['plan', 'partition', 'mkfs', 'download', 'verify', 'unpack', 'identity']) expect(stages, s).toContain(s);
    expect(events.map((e) => e.event.type).slice(0, 2)).toEqual(['assigned', 'provision_started']);
    expect(events.at(-1)?.event.type).toBe('installed');
    expect((await store.getNode(GOOD.name))?.state).toBe('installed');
    const download = events.find((e) => e.event.type === 'stage' && e.event.stage === 'download' && (e.event.detail?.['bytes'] as number) > 0);
    expect(download?.event).toMatchObject({ detail: { size: image.size } });

    const disk = vm.disk!;
    expect(debugfsOnDisk(disk, 3, 'cat /etc/hostname')).toBe(`${GOOD.name}\n`);
    expect(debugfsOnDisk(disk, 3, 'cat /etc/hosts')).toContain(`127.0.1.1 ${GOOD.name}`);
    expect(debugfsOnDisk(disk, 3, 'cat /etc/hosts')).not.toContain('imagehost');
    expect(debugfsOnDisk(disk, 3, 'cat /etc/fstab')).toMatch(/^LABEL=rackseed-root \/ ext4/m);
    expect(debugfsOnDisk(disk, 3, 'cat /etc/machine-id')).toBe('');
    expect(debugfsOnDisk(disk, 3, 'cat /etc/systemd/network/10-rackseed-provisioning.network')).toContain(`MACAddress=${GOOD.mac}`);
    const pinned = debugfsOnDisk(disk, 3, 'cat /etc/ssh/ssh_host_ed25519_key.pub').trim();
    const dataDir = lab.dataDir;
    expect(pinned).toBe(readFileSync(path.join(dataDir, 'nodes', GOOD.name, 'ssh_host_ed25519_key.pub'), 'utf8').trim());
    expect(debugfsOnDisk(disk, 3, 'cat /etc/ssh/ssh_host_rsa_key')).toBe('');
    expect(debugfsOnDisk(disk, 3, 'cat /root/.ssh/authorized_keys').trim()).toBe(readFileSync(path.join(dataDir, 'ssh', 'id_ed25519.pub'), 'utf8').trim());
    expect(debugfsOnDisk(disk, 3, 'stat /etc/ssh/ssh_host_ed25519_key')).toMatch(/Mode:\s+0600/);
    expect(debugfsOnDisk(disk, 3, 'ea_list /opt/payload.bin')).toMatch(/user\.rackseed.*kept/);
    expect(debugfsOnDisk(disk, 3, 'stat /.rackseed-download')).toBe('');
    expect(vm.serial()).toMatch(/RACKSEED-INSTALLER: verified sha256 [0-9a-f]{64}/);
  }, 400_000);

  it('refuses an image whose sha256 does not match the plan: reports verify failed and powers off', async () => {
    const vm = await lab.boot({ name: BAD.name, mac: BAD.mac, firmware: 'bios', diskMiB: 128, diskFormat: 'raw', memoryMiB: 1024 });
    await vm.waitForSerial(/RACKSEED-INSTALLER: FAILED stage=verify: image sha256 [0-9a-f]{64}, the plan says f{64}/, 360_000);
    await vm.waitForExit(60_000);
    expect(vm.serial()).not.toMatch(/RACKSEED-INSTALLER: reboot/);
    const status = await waitFor('failed status', async () => {
      const s = await store.getNode(BAD.name);
      return s?.state === 'failed' ? s : undefined;
    }, 10_000);
    expect(status).toMatchObject({ state: 'failed', stage: 'verify' });
    expect(status.reason).toMatch(/sha256/);
  }, 400_000);

  it('wipes a used disk on request: every signature gone, a file system inside a partition too, reported, powered off', async () => {
    const MiB = 1024 * 1024;
    // The disk an earlier life left: a GPT with one partition from 20 MiB, an ext4 file system in it, random bytes.
    const disk = path.join(lab.work, `${WIPE.name}.raw`);
    const fd = openSync(disk, 'w');
    for (let i = 0; i < 64; i++) writeSync(fd, randomBytes(MiB));
    closeSync(fd);
    const fs = path.join(lab.work, 'wipe-fs.img');
    execFileSync('truncate', ['-s', '20M', fs]);
    execFileSync('mkfs.ext4', ['-q', '-F', fs]);
    execFileSync('dd', [`if=${fs}`, `of=${disk}`, 'bs=1M', 'seek=20', 'conv=notrunc', 'status=none']);
    execFileSync('sfdisk', ['--quiet', '--no-reread', disk], { input: 'label: gpt\nstart=40960, size=40960, type=L\n' });
    const signatures = (file: string) => execFileSync('wipefs', ['--noheadings', file], { encoding: 'utf8' }).trim();
    /** What a probe finds in the partition's 20 MiB, as the kernel would once a partition table points there again. */
    const partitionSignatures = () => {
      writeFileSync(fs, readFileSync(disk).subarray(20 * MiB, 40 * MiB));
      return signatures(fs);
    };
    expect(signatures(disk)).toMatch(/gpt/);
    expect(partitionSignatures()).toMatch(/ext4/);
    const ext4Magic = () => readFileSync(disk).readUInt16LE(20 * MiB + 1024 + 56);
    expect(ext4Magic()).toBe(0xef53);

    expect((await store.recordEvent({ node: WIPE.name, event: { type: 'wipe_requested', mode: 'quick' } })).ok).toBe(true);
    const vm = await lab.boot({ name: WIPE.name, mac: WIPE.mac, firmware: 'bios', diskMiB: 64, diskFormat: 'raw', memoryMiB: 1024 });
    expect(vm.disk).toBe(disk);
    await vm.waitForSerial(/RACKSEED-INSTALLER: wiped/, 240_000);
    await vm.waitForExit(60_000);
    expect(vm.serial()).toMatch(/RACKSEED-INSTALLER: poweroff/);
    expect(vm.serial()).not.toMatch(/RACKSEED-INSTALLER: reboot/);

    const events = await waitForEvent(store, WIPE.name, 'wiped', undefined, 10_000);
    expect(events.map((e) => e.event.type)).toEqual(expect.arrayContaining(['wipe_requested', 'wipe_started', 'stage', 'wiped']));
    const wiped = events.at(-1)?.event as Extract<LifecycleEvent, { type: 'wiped' }>;
    expect(wiped).toMatchObject({ type: 'wiped', mode: 'quick', remote: WIPE.ip });
    expect(wiped.disks.map((d) => [d.name, d.bytes])).toEqual([['vda', 64 * MiB]]);
    // Its reports came with the report token the wipe plan gave (a full wipe outlives the boot token).
    expect(vm.serial()).toMatch(/RACKSEED-INSTALLER: plan: wipe every disk of inst04 \(quick\)/);
    expect(await store.getNode(WIPE.name)).toMatchObject({ state: 'wiped' });
    const after = readFileSync(disk);
    expect(signatures(disk)).toBe('');
    expect(after.subarray(0, 16 * MiB).every((b) => b === 0)).toBe(true);
    expect(after.subarray(48 * MiB).every((b) => b === 0)).toBe(true);
    // The file system inside the partition, past the zeroed edges, lost its superblock signature (wipefs on vda1)...
    expect(ext4Magic()).not.toBe(0xef53);
    expect(partitionSignatures()).toBe('');
    // ...and not because the whole disk was zeroed (a discard QEMU turned into zeros): quick leaves the data between.
    expect(after.subarray(42 * MiB, 46 * MiB).some((b) => b !== 0)).toBe(true);
  }, 400_000);

  it('refuses a layout larger than the disk in the partition stage (sfdisk shrank it and the install went on before)', async () => {
    const vm = await lab.boot({ name: TIGHT.name, mac: TIGHT.mac, firmware: 'bios', diskMiB: 128, diskFormat: 'raw', memoryMiB: 1024 });
    await vm.waitForSerial(/RACKSEED-INSTALLER: FAILED stage=partition: partition 2 \(\/\) came out \d+ MiB, the layout asks for 256M/, 360_000);
    await vm.waitForExit(60_000);
    const status = await waitFor('failed status', async () => {
      const s = await store.getNode(TIGHT.name);
      return s?.state === 'failed' ? s : undefined;
    }, 10_000);
    expect(status).toMatchObject({ state: 'failed', stage: 'partition' });
    expect(status.reason).toMatch(/too small for the group's layout/);
  }, 400_000);
});
