import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountedFor, type DhcpStats } from '../../server/dhcp/stats.js';
import { decode } from '../../server/protocol/dhcp/codec.js';
import { leaseTime, MessageType, messageType } from '../../server/protocol/dhcp/options.js';
import type { ObservedStore } from '../../server/store/types.js';
import { buildTestInitramfs } from '../support/initramfs.js';
import { startKea } from '../support/kea.js';
import { ProvisioningLab } from '../support/lab.js';
import { catalogTestImage, installTestBootFiles, netbootInventory, TEST_PROVISIONING, waitForEvent } from '../support/netboot.js';
import { readPcap } from '../support/pcap.js';
import { requireBinary } from '../support/process-output.js';
import type { Vm } from '../support/qemu.js';
import { waitFor } from '../support/wait.js';

/**
 * proxyDHCP beside a site's DHCP server: ISC Kea (in its own namespace, as another host on the segment) hands out
 * addresses; rackseed only says what to boot. Machines must get their address from Kea and their boot
 * information from rackseed, and rackseed must never offer an address (checked on the wire with tcpdump).
 *
 *   site (Kea, 10.0.2.2) --veth-- [ bridge br in sv: rackseed 10.0.2.1 ] -- taps of the VMs
 */
const SERVER = '10.0.2.1';
const KNOWN = { name: 'proxy01', mac: '52:54:00:e3:00:01' };

let lab: ProvisioningLab;
let store: ObservedStore;
let pcap: string;
let tcpdump: ReturnType<ProvisioningLab['netns']['spawn']>;

beforeAll(async () => {
  requireBinary('qemu-system-x86_64', 'apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils ipxe-qemu ovmf');
  requireBinary('kea-dhcp4', 'apt-get install -y --no-install-recommends kea-dhcp4-server');
  lab = new ProvisioningLab(SERVER);
  const { netns } = lab;
  const site = netns.addNamespace('site');
  const [siteIf] = netns.addVeth(site, 'ke', lab.ns, 'kp', { masterB: lab.bridge });
  netns.addAddress(site, siteIf, '10.0.2.2/24');

  // The witness: every datagram rackseed sends from its DHCP ports.
  pcap = path.join(lab.work, 'rackseed-replies.pcap');
  tcpdump = netns.spawn(lab.ns, 'tcpdump', ['-i', lab.bridge, '-n', '-U', '--immediate-mode', '-s', '0', '-w', pcap, `udp and src host ${SERVER} and (src port 67 or src port 4011)`]);

  const config = `${TEST_PROVISIONING}dhcp:
  mode: proxy
  interface: ${lab.bridge}
  server_ip: ${SERVER}
`;
  const [initramfs] = await Promise.all([
    buildTestInitramfs(),
    lab.startServer({ config, inventory: netbootInventory([KNOWN]), waitFor: [/DHCP listening/, /tftp: listening/] }),
    startKea({ netns, ns: site, iface: siteIf, subnet: '10.0.2.0/24', pool: '10.0.2.100 - 10.0.2.150', routers: SERVER, workDir: lab.work }),
  ]);
  installTestBootFiles(lab.server, initramfs);
  await catalogTestImage(lab);
  store = await lab.openStore();
  await waitFor('tcpdump to start', () => existsSync(pcap), 10_000);
});

afterAll(async () => {
  await lab?.teardown();
});

function boot(name: string, mac: string, firmware: 'bios' | 'uefi', uuid?: string): Promise<Vm> {
  const nic = firmware === 'uefi' ? 'firmware-pxe' : 'ipxe-rom';
  return lab.boot({ name, mac, firmware, nic, diskMiB: 64, bootOrder: 'network', ...(uuid ? { smbios: { uuid } } : {}) });
}

describe('proxyDHCP beside a site DHCP server (Kea)', () => {
  it('an unknown UEFI machine takes its address from Kea, its boot file from rackseed over 4011 and TFTP, and is discovered', async () => {
    const uuid = '7a1e2b3c-0000-4000-8000-00000000e3a1';
    const mac = '52:54:00:e3:00:99';
    const vm = await boot('proxy-unknown-uefi', mac, 'uefi', uuid);
    await vm.waitForSerial(/is not in\s+the inventory/, 120_000);
    const status = await waitFor('discovered status', () => store.getNode(mac), 10_000);
    expect(status).toMatchObject({ state: 'discovered', facts: { uuid: uuid, platform: 'efi' } });
    // iPXE prints the address it configured: one from Kea's pool.
    expect(vm.serial()).toMatch(/10\.0\.2\.1(0\d|[1-4]\d|50)\//);
    const stats = lab.server.api<{ dhcp: { proxyOffers: number; proxyAcks: number; offers: number; acks: number }; tftp: { transfersOk: number } }>('/netboot/stats');
    expect(stats.dhcp.proxyOffers).toBeGreaterThanOrEqual(2); // firmware PXE, then iPXE
    expect(stats.dhcp.proxyAcks).toBeGreaterThanOrEqual(1); // the firmware's port-4011 request
    expect(stats.tftp.transfersOk).toBe(1); // snponly.efi
    expect(stats.dhcp.offers + stats.dhcp.acks).toBe(0);
    await vm.kill();
  }, 180_000);

  it('a known BIOS node is provisioned: Kea address, rackseed boot, report with its node token', async () => {
    const vm = await boot(KNOWN.name, KNOWN.mac, 'bios');
    const events = await waitForEvent(store, KNOWN.name, 'stage', 'initramfs', 150_000);
    const stage = events.at(-1)!.event;
    expect(stage.type === 'stage' && String(stage.detail?.ip)).toMatch(/^10\.0\.2\.1(0\d|[1-4]\d|50)$/);
    await vm.waitForExit(60_000);
  }, 180_000);

  it('rackseed never offered an address: every reply on the wire has yiaddr 0.0.0.0 and no lease time', async () => {
    await lab.netns.stop(tcpdump, 'SIGINT');
    const replies = readPcap(readFileSync(pcap)).map((d) => decode(d.payload));
    expect(replies.length).toBeGreaterThanOrEqual(4);
    for (const r of replies) {
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      expect([MessageType.OFFER, MessageType.ACK]).toContain(messageType(r.packet));
      expect(r.packet.yiaddr).toBe('0.0.0.0');
      expect(leaseTime(r.packet)).toBeUndefined();
    }
    // And everything it received is accounted for: answered, ignored (not netboot, not for it) or dropped.
    const s = lab.server.api<{ dhcp: DhcpStats }>('/netboot/stats').dhcp;
    expect(accountedFor(s)).toBe(s.received);
    expect(s.proxyOffers + s.proxyAcks).toBe(replies.length);
  });
});
