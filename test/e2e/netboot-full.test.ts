import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObservedStore } from '../../server/store/types.js';
import { buildTestInitramfs, type TestInitramfs } from '../support/initramfs.js';
import { fullDhcpConfig, ProvisioningLab } from '../support/lab.js';
import { catalogTestImage, installTestBootFiles, netbootInventory, TEST_PROVISIONING, waitForEvent } from '../support/netboot.js';
import { requireBinary } from '../support/process-output.js';
import type { Vm } from '../support/qemu.js';
import { waitFor } from '../support/wait.js';

/**
 * The whole netboot path with rackseed as the only DHCP server (full mode): a QEMU machine with an empty disk
 * PXE boots (DHCP -> TFTP -> iPXE -> HTTP). An unknown one is registered as discovered with its SMBIOS UUID;
 * a known one is handed a kernel and the test initramfs, which reports back with its node token.
 */
const SERVER = '10.0.0.1';
const BIOS_NODE = { name: 'bios01', mac: '52:54:00:e2:00:01', ip: '10.0.0.31' };
const UEFI_NODE = { name: 'uefi01', mac: '52:54:00:e2:00:02', ip: '10.0.0.32' };

let lab: ProvisioningLab;
let store: ObservedStore;
let initramfs: TestInitramfs;

beforeAll(async () => {
  requireBinary('qemu-system-x86_64', 'apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils ipxe-qemu ovmf');
  lab = new ProvisioningLab(SERVER);
  const config = TEST_PROVISIONING + fullDhcpConfig(lab, '10.0.0.0/24', { start: '10.0.0.100', end: '10.0.0.199' });
  [initramfs] = await Promise.all([
    buildTestInitramfs(),
    lab.startServer({ config, inventory: netbootInventory([BIOS_NODE, UEFI_NODE]), waitFor: [/DHCP listening/, /tftp: listening/] }),
  ]);
  installTestBootFiles(lab.server, initramfs);
  await catalogTestImage(lab);
  store = await lab.openStore();
});

afterAll(async () => {
  await lab?.teardown();
});

function boot(name: string, mac: string, firmware: 'bios' | 'uefi', uuid?: string): Promise<Vm> {
  // UEFI machines PXE boot with the firmware's own stack (TFTP first); BIOS ones with QEMU's iPXE ROM.
  const nic = firmware === 'uefi' ? 'firmware-pxe' : 'ipxe-rom';
  return lab.boot({ name, mac, firmware, nic, diskMiB: 64, bootOrder: 'network', ...(uuid ? { smbios: { uuid, serial: `SN-${name}`, product: 'e2e-box' } } : {}) });
}

describe('netboot end to end, full mode', () => {
  it('an unknown BIOS machine is discovered with its SMBIOS facts and sent to its next boot device', async () => {
    const uuid = '7a1e2b3c-0000-4000-8000-00000000e2b1';
    const mac = '52:54:00:e2:00:99';
    const vm = await boot('unknown-bios', mac, 'bios', uuid);
    await vm.waitForSerial(/is not in\s+the inventory/, 90_000);
    const status = await waitFor('discovered status', () => store.getNode(mac), 10_000);
    expect(status).toMatchObject({ state: 'discovered', facts: { uuid, serial: 'SN-unknown-bios', product: 'e2e-box', platform: 'pcbios' } });
    // QEMU's BIOS NIC ROM is iPXE itself: it is handed the HTTP entry script at once, never another iPXE.
    expect(vm.serial()).toMatch(/http:\/\/10\.0\.0\.1:8080\/boot\.ipxe/);
    await vm.kill();
  }, 150_000);

  it('an unknown UEFI machine is discovered, and its firmware goes on to its next boot entry', async () => {
    const uuid = '7a1e2b3c-0000-4000-8000-00000000e2b2';
    const mac = '52:54:00:e2:00:98';
    const vm = await boot('unknown-uefi', mac, 'uefi', uuid);
    await vm.waitForSerial(/is not in\s+the inventory/, 120_000);
    expect(await waitFor('discovered status', () => store.getNode(mac), 10_000)).toMatchObject({ state: 'discovered', facts: { uuid, platform: 'efi' } });
    // The script exits iPXE with a failure status, so OVMF leaves the PXE entry and tries its next one (after a
    // success it would stop at its boot menu; after Debian's ipxe.efi it would hang).
    await vm.waitForSerial(/BdsDxe: failed to start Boot\d+ "UEFI PXEv4[^"]*"/, 60_000);
    await vm.kill();
  }, 200_000);

  it.each([
    ['BIOS', BIOS_NODE, 'bios'],
    ['UEFI', UEFI_NODE, 'uefi'],
  ] as const)('a known %s node gets its kernel and initramfs, which report back with the node token', async (_label, node, firmware) => {
    const tftpBefore = lab.server.api<{ tftp: { transfersOk: number } }>('/netboot/stats').tftp.transfersOk;
    const vm = await boot(node.name, node.mac, firmware);
    const events = await waitForEvent(store, node.name, 'stage', 'initramfs', 150_000);
    expect(events.map((e) => e.event.type)).toEqual(['assigned', 'provision_started', 'stage']);
    const stage = events.at(-1)!.event;
    expect(stage).toMatchObject({ type: 'stage', stage: 'initramfs', detail: { ip: node.ip, kernel: initramfs.kernelVersion } });
    await vm.waitForSerial(/RACKSEED-INITRAMFS: reported ok/, 30_000);
    expect((await store.getNode(node.name))?.state).toBe('provisioning');
    // UEFI firmware PXE (OVMF) loads snponly.efi over TFTP first; BIOS here boots the iPXE ROM directly.
    const tftpAfter = lab.server.api<{ tftp: { transfersOk: number } }>('/netboot/stats').tftp.transfersOk;
    expect(tftpAfter - tftpBefore).toBe(firmware === 'uefi' ? 1 : 0);
    await vm.waitForExit(30_000);
  }, 180_000);
});
