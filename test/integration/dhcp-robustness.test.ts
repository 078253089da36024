import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountedFor, type DhcpStats } from '../../server/dhcp/stats.js';
import { decode } from '../../server/protocol/dhcp/codec.js';
import { MessageType, messageType } from '../../server/protocol/dhcp/options.js';
import type { ObservedStore } from '../../server/store/types.js';
import { fixtureBytes, fixtureNames } from '../fixtures/dhcp/load.js';
import { runUdhcpc } from '../support/dhcp-clients.js';
import { ProvisioningLab } from '../support/lab.js';
import type { Netns } from '../support/netns.js';
import { readPcap } from '../support/pcap.js';
import { TSX_IMPORT } from '../support/tsx.js';
import { waitFor } from '../support/wait.js';

/**
 * The DHCP listener under hostile input and under a crash:
 *  - 100,000 random and mutated datagrams: the process survives, every datagram is accounted for, and a real
 *    client still gets a lease afterwards;
 *  - kill -9 in the middle of a perfdhcp run: every ACK that went on the wire (seen by tcpdump) has its lease in
 *    the store after the restart, and no address is held twice.
 */
const PROBE = path.resolve(import.meta.dirname, '../support/dhcp-probe.ts');

const CONFIG = (br: string) => `tftp:
  enabled: false
dhcp:
  mode: full
  interface: ${br}
  server_ip: 10.0.0.1
  subnets:
    - cidr: 10.0.0.0/24
      pool: { start: 10.0.0.100, end: 10.0.0.199 }
    - cidr: 10.0.16.0/20
      pool: { start: 10.0.16.10, end: 10.0.31.250 }
`;

let lab: ProvisioningLab;
let netns: Netns;
let sv: string;

const client = () => lab.addClient();
const udhcpcLease = (ns: string, ifname: string) => runUdhcpc(netns, ns, ifname, lab.work).ip;

function stats(): DhcpStats {
  return lab.server.api<{ dhcp: DhcpStats }>('/netboot/stats').dhcp;
}

/** The namespace's count of UDP datagrams dropped because a socket's receive buffer was full. */
function udpReceiveBufferErrors(ns: string): number {
  const lines = netns.run(ns, 'cat', ['/proc/net/snmp']).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const [head, values] = lines.map((l) => l.split(/\s+/).slice(1));
  const i = head!.indexOf('RcvbufErrors');
  return Number(values![i]);
}

beforeAll(async () => {
  lab = new ProvisioningLab('10.0.0.1');
  netns = lab.netns;
  sv = lab.ns;
  netns.run(sv, 'ip', ['route', 'add', '10.0.16.0/20', 'dev', lab.bridge]);
  await lab.startServer({ config: CONFIG(lab.bridge), inventory: 'cluster:\n  name: t\ngroups: {}\nnodes: []\n', waitFor: [/DHCP listening/] });
});

afterAll(async () => {
  await lab?.teardown();
});

describe('DHCP listener robustness', () => {
  it('survives 100,000 random and mutated datagrams, accounts for each, and still serves a real client', async () => {
    const before = stats().received;
    const kernelDropsBefore = udpReceiveBufferErrors(sv);
    const c = client();
    netns.addAddress(c.ns, c.ifname, '10.0.0.70/24');
    const seeds = fixtureNames().map((n) => Buffer.from(fixtureBytes(n)).toString('base64'));
    const r = netns.run(c.ns, process.execPath, ['--import', TSX_IMPORT, PROBE, JSON.stringify({ mode: 'fuzz', to: '10.0.0.1', count: 100_000, seed: 7, seeds })], 300_000);
    expect(r.status, r.stderr).toBe(0);
    const { sent } = JSON.parse(r.stdout) as { sent: number };
    expect(sent).toBe(100_000);

    // A datagram either reached the process (and is counted there) or was dropped by the kernel for a full
    // socket buffer (counted in the namespace's UDP RcvbufErrors). Together they cover everything sent.
    const s = await waitFor('the server to account for every datagram', () => {
      const now = stats();
      const reached = now.received - before;
      const kernelDrops = udpReceiveBufferErrors(sv) - kernelDropsBefore;
      return accountedFor(now) === now.received && reached + kernelDrops >= sent ? now : undefined;
    }, 120_000, 500);
    expect(lab.server.child.exitCode).toBeNull();
    expect(s.dropped.BAD_MAGIC ?? 0).toBeGreaterThan(1_000);
    expect(s.dropped.TRUNCATED_OPTION ?? 0).toBeGreaterThan(1_000);
    expect(s.dropped.HANDLER_ERROR ?? 0).toBe(0);

    const real = client();
    expect(udhcpcLease(real.ns, real.ifname)).toMatch(/^10\.0\.0\.1\d\d$/);
  }, 300_000);

  it('kill -9 during a perfdhcp run loses no ACKed lease and never holds an address twice', async () => {
    const c = client();
    netns.addAddress(c.ns, c.ifname, '10.0.16.2/20');
    const pcap = path.join(lab.work, 'acks.pcap');
    // tcpdump is the independent witness of what the server put on the wire.
    const tcpdump = netns.spawn(sv, 'tcpdump', ['-i', lab.bridge, '-n', '-U', '--immediate-mode', '-s', '0', '-w', pcap, 'udp and src port 67']);
    await waitFor('tcpdump to start', () => existsSync(pcap), 10_000);
    const perf = netns.spawn(c.ns, 'perfdhcp', ['-4', '-l', c.ifname, '-r', '400', '-R', '3000', '-p', '20', '10.0.0.1']);
    await waitFor('some leases to be bound', () => (stats().acks >= 200 ? true : undefined), 30_000, 100);
    await lab.server.kill9();
    await netns.stop(perf, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    await netns.stop(tcpdump, 'SIGINT');

    const acks = readPcap(readFileSync(pcap))
      .map((d) => decode(d.payload))
      .filter((d) => d.ok && messageType(d.packet) === MessageType.ACK)
      .map((d) => (d.ok ? { mac: d.packet.mac!, ip: d.packet.yiaddr } : undefined))
      .filter((x) => x !== undefined);
    expect(acks.length).toBeGreaterThanOrEqual(200);

    await lab.server.restart();
    const store: ObservedStore = await lab.server.openStore();
    try {
      const leases = await store.listLeases();
      const byIp = new Map(leases.map((l) => [l.ip, l]));
      const lost = acks.filter((a) => {
        const l = byIp.get(a.ip);
        return !l || l.mac !== a.mac || l.state !== 'bound';
      });
      // A client may have been ACKed twice (a retransmitted REQUEST); its lease is the same one.
      expect(lost, `${lost.length} ACKed leases are missing after the crash`).toEqual([]);
      const active = leases.filter((l) => l.state === 'bound' || l.state === 'offered');
      expect(new Set(active.map((l) => l.mac)).size).toBe(active.length);

      // The restarted server serves again.
      const real = client();
      expect(udhcpcLease(real.ns, real.ifname)).toMatch(/^10\.0\.0\.1\d\d$/);
    } finally {
      await store.close();
    }
  }, 180_000);
});
