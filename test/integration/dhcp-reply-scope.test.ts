import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DhcpStats } from '../../server/dhcp/stats.js';
import { buildPacket } from '../../server/protocol/dhcp/builder.js';
import { encode } from '../../server/protocol/dhcp/codec.js';
import { MessageType, Opt } from '../../server/protocol/dhcp/options.js';
import { BOOTREQUEST } from '../../server/protocol/dhcp/packet.js';
import { fullDhcpConfig, ProvisioningLab } from '../support/lab.js';
import { TSX_IMPORT } from '../support/tsx.js';

/**
 * Where replies go when a request names addresses. The server's namespace also has an uplink (192.0.2.0/24) and a
 * default route through it to a "wan" namespace that owns the addresses a request names and listens on the DHCP
 * ports there. A DISCOVER never carries ciaddr: before, one that named a foreign ciaddr made the server send its OFFER
 * there, through the default route. A relay address (giaddr) is answered wherever it is, as every DHCP server does:
 * proxyDHCP clients behind a relay depend on it.
 */
const PROBE = path.resolve(import.meta.dirname, '../support/dhcp-probe.ts');
const FOREIGN_CLIENT = '203.0.113.7';
const FOREIGN_RELAY = '198.51.100.9';

let lab: ProvisioningLab | undefined;
afterEach(async () => {
  await lab?.teardown();
  lab = undefined;
});

function discover(mac: string, o: { ciaddr?: string; giaddr?: string }): string {
  const chaddr = Uint8Array.from(mac.split(':').map((h) => Number.parseInt(h, 16)));
  // A PXE client, so proxy mode answers it too; no broadcast flag, so the reply would be unicast.
  const options = new Map<number, Uint8Array>([
    [Opt.messageType, Uint8Array.of(MessageType.DISCOVER)],
    [Opt.vendorClassId, new TextEncoder().encode('PXEClient:Arch:00000:UNDI:002001')],
    [Opt.clientArch, Uint8Array.of(0, 0)],
  ]);
  return Buffer.from(encode(buildPacket({ op: BOOTREQUEST, xid: 0x1234, chaddr, flags: 0, ...o, options }))).toString('base64');
}

/** The wan side: owns the foreign addresses and listens on 67 and 68 for anything the server sends there. */
async function withUplink(l: ProvisioningLab, send: () => void): Promise<number> {
  const { netns } = l;
  const wan = netns.addNamespace('wan');
  const [up, down] = netns.addVeth(l.ns, 'up', wan, 'wd');
  netns.addAddress(l.ns, up, '192.0.2.1/24');
  netns.addAddress(wan, down, '192.0.2.2/24');
  netns.run(l.ns, 'ip', ['route', 'add', 'default', 'via', '192.0.2.2']);
  for (const a of [FOREIGN_CLIENT, FOREIGN_RELAY]) netns.addAddress(wan, 'lo', `${a}/32`);
  const listen = (port: number) => {
    // The probe with nothing to send listens on 68; for 67 the same script runs with its port argument.
    const child = netns.spawn(wan, process.execPath, ['--import', TSX_IMPORT, PROBE, JSON.stringify({ mode: 'send', to: '127.0.0.1', packets: [], listenMs: 4_000, port })]);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise<number>((resolve) => child.on('close', () => resolve((JSON.parse(out || '{"replies":[]}') as { replies: unknown[] }).replies.length)));
  };
  const heard = Promise.all([listen(68), listen(67)]);
  await new Promise((r) => setTimeout(r, 1_000));
  send();
  return (await heard).reduce((a, b) => a + b, 0);
}

function stats(l: ProvisioningLab): DhcpStats {
  return l.server.api<{ dhcp: DhcpStats }>('/netboot/stats').dhcp;
}

describe('DHCP reply destinations', () => {
  it('full mode: an OFFER to a DISCOVER naming a foreign ciaddr is broadcast on the provisioning network, not sent there', async () => {
    lab = new ProvisioningLab('10.0.0.1');
    await lab.startServer({ config: `tftp:\n  enabled: false\n${fullDhcpConfig(lab, '10.0.0.0/24', { start: '10.0.0.100', end: '10.0.0.199' })}`, inventory: 'cluster:\n  name: t\n', waitFor: [/DHCP listening/] });
    const l = lab;
    const c = l.addClient();
    // A client without an address yet broadcasts.
    l.netns.run(c.ns, 'ip', ['route', 'add', '255.255.255.255', 'dev', c.ifname]);
    let answered = 0;
    const heard = await withUplink(l, () => {
      const r = l.netns.run(c.ns, process.execPath, ['--import', TSX_IMPORT, PROBE, JSON.stringify({ mode: 'send', to: '255.255.255.255', packets: [discover('52:54:00:aa:00:01', { ciaddr: FOREIGN_CLIENT })], listenMs: 1_500 })]);
      answered = (JSON.parse(r.stdout) as { replies: unknown[] }).replies.length;
    });
    expect(heard).toBe(0);
    expect(answered).toBe(1);
    expect(stats(l).offers).toBe(1);
  }, 60_000);

  it('proxy mode: a DISCOVER naming a foreign ciaddr is answered on the provisioning network; a relayed one goes to its relay, routed or not', async () => {
    lab = new ProvisioningLab('10.0.0.1');
    const config = `tftp:\n  enabled: false\ndhcp:\n  mode: proxy\n  interface: ${lab.bridge}\n  server_ip: 10.0.0.1\n`;
    await lab.startServer({ config, inventory: 'cluster:\n  name: t\n', waitFor: [/DHCP listening/] });
    const l = lab;
    const c = l.addClient();
    l.netns.run(c.ns, 'ip', ['route', 'add', '255.255.255.255', 'dev', c.ifname]);
    let answered = 0;
    const heard = await withUplink(l, () => {
      const packets = [discover('52:54:00:aa:00:02', { ciaddr: FOREIGN_CLIENT }), discover('52:54:00:aa:00:03', { giaddr: FOREIGN_RELAY })];
      const r = l.netns.run(c.ns, process.execPath, ['--import', TSX_IMPORT, PROBE, JSON.stringify({ mode: 'send', to: '255.255.255.255', packets, listenMs: 1_500 })]);
      answered = (JSON.parse(r.stdout) as { replies: unknown[] }).replies.length;
    });
    // The relay (here at the far end of the default route) hears its offer, and only that one.
    expect(heard).toBe(1);
    expect(answered).toBe(1);
    expect(stats(l).proxyOffers).toBe(2);
  }, 60_000);
});
