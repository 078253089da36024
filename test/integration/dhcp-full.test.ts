import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountedFor, type DhcpStats } from '../../server/dhcp/stats.js';
import { buildPacket } from '../../server/protocol/dhcp/builder.js';
import { decode, encode } from '../../server/protocol/dhcp/codec.js';
import { leaseTime, MessageType, messageType, Opt } from '../../server/protocol/dhcp/options.js';
import { BOOTREQUEST, FLAG_BROADCAST } from '../../server/protocol/dhcp/packet.js';
import type { ObservedStore } from '../../server/store/types.js';
import { runDhclient, runUdhcpc } from '../support/dhcp-clients.js';
import { ProvisioningLab } from '../support/lab.js';
import type { Netns } from '../support/netns.js';
import { TSX_IMPORT } from '../support/tsx.js';
import { waitFor } from '../support/wait.js';

/**
 * Full mode against real clients (dhclient, udhcpc, perfdhcp as a relay) in namespaces this test creates:
 *   sv: bridge br 10.0.0.1/24 (+ a route to the relayed subnet 10.0.5.0/24), rackseed on it
 *   one namespace per client, each joined to br by a veth.
 */
const PROBE = path.resolve(import.meta.dirname, '../support/dhcp-probe.ts');
const KNOWN_MAC = '52:54:00:12:00:01';

const INVENTORY = `cluster:
  name: t
groups:
  compute:
    image: debian12
    lease_seconds: 7200
nodes:
  - name: n01
    mac: ${KNOWN_MAC}
    ip: 10.0.0.21
    group: compute
`;

const CONFIG = (br: string) => `tftp:
  enabled: false
dhcp:
  mode: full
  interface: ${br}
  server_ip: 10.0.0.1
  lease_seconds: 3600
  subnets:
    - cidr: 10.0.0.0/24
      pool: { start: 10.0.0.100, end: 10.0.0.199 }
      routers: [10.0.0.1]
      dns: [10.0.0.1]
      domain: cluster.local
    - cidr: 10.0.5.0/24
      pool: { start: 10.0.5.100, end: 10.0.5.250 }
`;

let lab: ProvisioningLab;
let netns: Netns;
let store: ObservedStore;

function stats(): DhcpStats {
  return lab.server.api<{ dhcp: DhcpStats }>('/netboot/stats').dhcp;
}

/** Sends crafted datagrams from inside `ns` and returns the decoded replies. */
function probe(ns: string, to: string, packets: Uint8Array[], listenMs = 1500) {
  const r = netns.run(ns, process.execPath, ['--import', TSX_IMPORT, PROBE, JSON.stringify({ mode: 'send', to, packets: packets.map((p) => Buffer.from(p).toString('base64')), listenMs })], 30_000);
  if (r.status !== 0) throw new Error(`probe failed: ${r.stderr}`);
  const { replies } = JSON.parse(r.stdout) as { replies: Array<{ from: string; base64: string }> };
  return replies.map((x) => {
    const d = decode(new Uint8Array(Buffer.from(x.base64, 'base64')));
    if (!d.ok) throw new Error(`undecodable reply from ${x.from}`);
    return { from: x.from, packet: d.packet };
  });
}

function request(mac: string, type: number, opts: { ciaddr?: string; options?: Array<[number, Uint8Array]> } = {}): Uint8Array {
  const chaddr = Uint8Array.from(mac.split(':').map((h) => Number.parseInt(h, 16)));
  const options = new Map<number, Uint8Array>([[Opt.messageType, Uint8Array.of(type)], ...(opts.options ?? [])]);
  const p = buildPacket({ op: BOOTREQUEST, xid: Math.floor(Math.random() * 2 ** 31), chaddr, flags: opts.ciaddr ? 0 : FLAG_BROADCAST, ...(opts.ciaddr ? { ciaddr: opts.ciaddr } : {}), options });
  return encode(p);
}

const ipBytes = (s: string) => Uint8Array.from(s.split('.').map(Number));

const dhclient = (ns: string, ifname: string, vendorClass?: string) => runDhclient(netns, ns, ifname, lab.work, vendorClass);
const udhcpc = (ns: string, ifname: string, extra: string[]) => runUdhcpc(netns, ns, ifname, lab.work, extra);
const client = (mac?: string) => lab.addClient(mac);

beforeAll(async () => {
  lab = new ProvisioningLab('10.0.0.1');
  netns = lab.netns;
  netns.run(lab.ns, 'ip', ['route', 'add', '10.0.5.0/24', 'dev', lab.bridge]);
  await lab.startServer({ config: CONFIG(lab.bridge), inventory: INVENTORY, waitFor: [/DHCP listening/] });
  store = await lab.openStore();
});

afterAll(async () => {
  await lab?.teardown();
});

describe('DHCP full mode with real clients', () => {
  it('dhclient (as a BIOS PXE client) gets a pool address and undionly.kpxe from this server', async () => {
    const c = client();
    const env = dhclient(c.ns, c.ifname, 'PXEClient:Arch:00000:UNDI:002001');
    expect(env.new_ip_address).toMatch(/^10\.0\.0\.1\d\d$/);
    expect(env.new_filename).toBe('undionly.kpxe');
    expect(env.new_dhcp_server_identifier).toBe('10.0.0.1');
    expect(env.new_routers).toBe('10.0.0.1');
    expect(env.new_domain_name).toBe('cluster.local');
    expect(env.new_dhcp_lease_time).toBe('3600');
    const lease = await store.getLeaseByIp(env.new_ip_address!);
    expect(lease).toMatchObject({ state: 'bound', server: 'rackseed' });
  });

  it('dhclient on a known node\'s MAC gets its reserved address, host name and group lease time', () => {
    const c = client(KNOWN_MAC);
    const env = dhclient(c.ns, c.ifname);
    expect(env.new_ip_address).toBe('10.0.0.21');
    expect(env.new_host_name).toBe('n01');
    expect(env.new_dhcp_lease_time).toBe('7200');
    // Not a netboot client: an address, no boot file.
    expect(env.new_filename).toBeUndefined();
  });

  it('udhcpc as a UEFI x86-64 PXE client gets the default UEFI loader, snponly.efi, from siaddr', () => {
    const c = client();
    const env = udhcpc(c.ns, c.ifname, ['-V', 'PXEClient:Arch:00007:UNDI:003016']);
    expect(env.ip).toMatch(/^10\.0\.0\.1\d\d$/);
    expect(env.boot_file).toBe('snponly.efi');
    expect(env.siaddr).toBe('10.0.0.1');
  });

  it('udhcpc announcing iPXE gets the HTTP entry script, not another iPXE binary', () => {
    const c = client();
    // Option 77 as iPXE sends it: the bare string "iPXE".
    const env = udhcpc(c.ns, c.ifname, ['-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x4d:69505845']);
    expect(env.boot_file).toBe('http://10.0.0.1:8080/boot.ipxe');
  });

  it('a REQUEST naming another server gets no answer at all', () => {
    const c = client();
    netns.run(c.ns, 'ip', ['route', 'add', '255.255.255.255', 'dev', c.ifname]);
    const before = stats().ignored['other-server'] ?? 0;
    const replies = probe(c.ns, '255.255.255.255', [
      request('52:54:00:99:00:01', MessageType.REQUEST, { options: [[Opt.serverId, ipBytes('10.0.0.254')], [Opt.requestedIp, ipBytes('10.0.0.150')]] }),
    ]);
    expect(replies).toEqual([]);
    expect(stats().ignored['other-server']).toBe(before + 1);
  });

  it('an init-reboot REQUEST for an address outside our subnets is left to its server (no NAK)', () => {
    const c = client();
    netns.run(c.ns, 'ip', ['route', 'add', '255.255.255.255', 'dev', c.ifname]);
    const replies = probe(c.ns, '255.255.255.255', [request('52:54:00:99:00:02', MessageType.REQUEST, { options: [[Opt.requestedIp, ipBytes('192.168.77.5')]] })]);
    expect(replies).toEqual([]);
  });

  it('a REQUEST for an address another client holds is NAKed', async () => {
    const holder = await store.getLeaseByIp('10.0.0.21');
    expect(holder?.mac).toBe(KNOWN_MAC);
    const c = client();
    netns.run(c.ns, 'ip', ['route', 'add', '255.255.255.255', 'dev', c.ifname]);
    const replies = probe(c.ns, '255.255.255.255', [request('52:54:00:99:00:03', MessageType.REQUEST, { options: [[Opt.serverId, ipBytes('10.0.0.1')], [Opt.requestedIp, ipBytes('10.0.0.21')]] })]);
    expect(replies).toHaveLength(1);
    expect(messageType(replies[0]!.packet)).toBe(MessageType.NAK);
  });

  it('INFORM gets network settings without a lease time, unicast to ciaddr', () => {
    const c = client();
    netns.addAddress(c.ns, c.ifname, '10.0.0.60/24');
    const replies = probe(c.ns, '10.0.0.1', [request('52:54:00:99:00:04', MessageType.INFORM, { ciaddr: '10.0.0.60' })]);
    expect(replies).toHaveLength(1);
    const ack = replies[0]!.packet;
    expect(messageType(ack)).toBe(MessageType.ACK);
    expect(leaseTime(ack)).toBeUndefined();
    expect(ack.yiaddr).toBe('0.0.0.0');
  });

  it('RELEASE frees the lease and DECLINE quarantines the address', async () => {
    const c = client('52:54:00:99:00:05');
    const env = udhcpc(c.ns, c.ifname, []);
    const ip = env.ip!;
    netns.addAddress(c.ns, c.ifname, `${ip}/24`);
    probe(c.ns, '10.0.0.1', [request('52:54:00:99:00:05', MessageType.RELEASE, { ciaddr: ip, options: [[Opt.serverId, ipBytes('10.0.0.1')]] })], 300);
    await waitFor('the lease to be released', async () => (await store.getLeaseByIp(ip))?.state === 'released');
    probe(c.ns, '10.0.0.1', [request('52:54:00:99:00:05', MessageType.DECLINE, { options: [[Opt.serverId, ipBytes('10.0.0.1')], [Opt.requestedIp, ipBytes(ip)]] })], 300);
    await waitFor('the address to be quarantined', async () => (await store.getLeaseByIp(ip))?.state === 'declined');
    expect(await store.getLeaseByIp(ip)).toMatchObject({ state: 'declined', mac: '52:54:00:99:00:05' });
    expect(stats()).toMatchObject({ releases: 1, declines: 1 });
  });

  it('perfdhcp through a relay address: answered to the relay, leases from the relay subnet', async () => {
    const c = client();
    netns.addAddress(c.ns, c.ifname, '10.0.5.2/24');
    const r = netns.run(c.ns, 'perfdhcp', ['-4', '-l', c.ifname, '-r', '50', '-R', '100', '-n', '100', '-W', '2000000', '10.0.0.1'], 120_000);
    const out = r.stdout + r.stderr;
    // perfdhcp reports per exchange type: DISCOVER-OFFER then REQUEST-ACK.
    const received = [...out.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
    expect(received.length, out).toBe(2);
    expect(received[0]).toBeGreaterThanOrEqual(95);
    expect(received[1]).toBeGreaterThanOrEqual(90);
    const relayLeases = (await store.listLeases()).filter((l) => l.ip.startsWith('10.0.5.') && l.state === 'bound');
    expect(relayLeases.length).toBeGreaterThanOrEqual(90);
    // No address is held by two MACs, and no MAC holds two addresses.
    expect(new Set(relayLeases.map((l) => l.mac)).size).toBe(relayLeases.length);
  });

  it('every datagram received is accounted for', () => {
    const s = stats();
    expect(accountedFor(s)).toBe(s.received);
  });
});
