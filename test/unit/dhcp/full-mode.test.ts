import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DhcpConfig } from '../../../server/config.js';
import { bootContextFor } from '../../../server/dhcp/boot-context.js';
import { FullModeHandler, unusableReservations } from '../../../server/dhcp/full-mode.js';
import { LeaseBook } from '../../../server/dhcp/lease-book.js';
import { emptyDhcpStats, type DhcpStats } from '../../../server/dhcp/stats.js';
import { createLogger } from '../../../server/log.js';
import { parseIpv4 } from '../../../server/model/ipv4.js';
import { buildPacket } from '../../../server/protocol/dhcp/builder.js';
import { getOption, MessageType, Opt } from '../../../server/protocol/dhcp/options.js';
import { BOOTREQUEST } from '../../../server/protocol/dhcp/packet.js';
import { InventoryService } from '../../../server/services/inventory-service.js';
import { SqliteStore } from '../../../server/store/sqlite.js';

/**
 * Full mode's choice of subnet and of reservation, through the handler over a real lease book and store: renewals
 * unicast from relayed subnets, a node declining its own reservation, and a reservation no served subnet holds.
 */
const SERVER = '10.0.0.1';
const NODE = '52:54:00:00:00:01';
const STRAY = '52:54:00:00:00:02';
const BCAST = '52:54:00:00:00:03';
const ON_SERVER = '52:54:00:00:00:04';
const INVENTORY = `cluster:
  name: t
groups:
  compute: {}
nodes:
  - name: n1
    mac: ${NODE}
    ip: 10.0.0.50
    group: compute
  - name: stray01
    mac: ${STRAY}
    ip: 10.0.9.11
    group: compute
  - name: bcast01
    mac: ${BCAST}
    ip: 10.0.0.255
    group: compute
  - name: srv01
    mac: ${ON_SERVER}
    ip: ${SERVER}
    group: compute
`;
const CONFIG: DhcpConfig = {
  mode: 'full',
  serverIp: SERVER,
  port: 67,
  proxyPort: 4011,
  subnets: [
    { cidr: '10.0.0.0/24', pool: { start: '10.0.0.100', end: '10.0.0.199' }, routers: ['10.0.0.254'], dns: [] },
    { cidr: '10.0.5.0/24', pool: { start: '10.0.5.100', end: '10.0.5.250' }, routers: ['10.0.5.1'], dns: [] },
  ],
  leaseSeconds: 3600,
  offerSeconds: 60,
  declineSeconds: 3600,
};

let work: string;
let store: SqliteStore;
let inventory: InventoryService;
let handler: FullModeHandler;
let stats: DhcpStats;

const ipBytes = (s: string) => Uint8Array.from(s.split('.').map(Number));
const macBytes = (m: string) => Uint8Array.from(m.split(':').map((h) => Number.parseInt(h, 16)));
const packet = (mac: string, type: number, options: Array<[number, Uint8Array]> = [], addrs: { ciaddr?: string; giaddr?: string } = {}) =>
  buildPacket({ op: BOOTREQUEST, xid: 7, chaddr: macBytes(mac), ...addrs, options: new Map<number, Uint8Array>([[Opt.messageType, Uint8Array.of(type)], ...options]) });

async function send(p: ReturnType<typeof packet>, source = { address: '0.0.0.0', port: 68 }) {
  const out = await handler.handle({ packet: p, receivedOn: 'dhcp', source });
  if (!out) return undefined;
  const router = getOption(out.packet, Opt.router);
  return { kind: out.kind, yiaddr: out.packet.yiaddr, router: router ? [...router].join('.') : undefined, to: `${out.route.address}:${out.route.port}` };
}

beforeEach(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-dhcp-full-'));
  writeFileSync(path.join(work, 'inventory.yaml'), INVENTORY);
  const log = createLogger('silent');
  inventory = new InventoryService(path.join(work, 'inventory.yaml'), log);
  store = SqliteStore.open(path.join(work, 'rackseed.db'));
  const book = new LeaseBook(store, 'rackseed');
  await book.load();
  book.setReservations(new Map([[parseIpv4('10.0.0.50')!, 'n1'], [parseIpv4('10.0.9.11')!, 'stray01']]));
  stats = emptyDhcpStats();
  handler = new FullModeHandler(CONFIG, inventory, book, bootContextFor(SERVER, `http://${SERVER}:8080`, inventory), stats, log);
});

afterEach(async () => {
  await store.close();
  rmSync(work, { recursive: true, force: true });
});

describe('full mode: the subnet of a request', () => {
  const RELAYED = '02:00:00:00:05:01';

  async function leaseViaRelay(): Promise<string> {
    const offer = await send(packet(RELAYED, MessageType.DISCOVER, [], { giaddr: '10.0.5.1' }));
    expect(offer).toMatchObject({ kind: 'offer', router: '10.0.5.1', to: '10.0.5.1:67' });
    const ack = await send(packet(RELAYED, MessageType.REQUEST, [[Opt.requestedIp, ipBytes(offer!.yiaddr)], [Opt.serverId, ipBytes(SERVER)]], { giaddr: '10.0.5.1' }));
    expect(ack).toMatchObject({ kind: 'ack', yiaddr: offer!.yiaddr });
    return offer!.yiaddr;
  }

  it('renews a lease on a relayed subnet when the client unicasts straight to the server (RENEWING: ciaddr, no giaddr)', async () => {
    const ip = await leaseViaRelay();
    const renew = await send(packet(RELAYED, MessageType.REQUEST, [], { ciaddr: ip }), { address: ip, port: 68 });
    expect(renew).toEqual({ kind: 'ack', yiaddr: ip, router: '10.0.5.1', to: `${ip}:68` });
    expect(stats.ignored['not-ours']).toBeUndefined();
  });

  it('answers INFORM from a relayed subnet with that subnet\'s settings', async () => {
    const ip = await leaseViaRelay();
    const inform = await send(packet(RELAYED, MessageType.INFORM, [], { ciaddr: ip }), { address: ip, port: 68 });
    expect(inform).toMatchObject({ kind: 'inform', router: '10.0.5.1', to: `${ip}:68` });
  });

  it('NAKs a client that moved between two served subnets and asks for its old address (both ways)', async () => {
    const relayed = await leaseViaRelay();
    // Moved onto the local segment: INIT-REBOOT for the relayed subnet's address, no server id, no giaddr.
    expect(await send(packet(RELAYED, MessageType.REQUEST, [[Opt.requestedIp, ipBytes(relayed)]]))).toMatchObject({ kind: 'nak' });
    // And a local client moved behind the relay.
    const local = await send(packet('02:00:00:00:00:0c', MessageType.DISCOVER));
    const ip = (local as { yiaddr: string }).yiaddr;
    expect(await send(packet('02:00:00:00:00:0c', MessageType.REQUEST, [[Opt.requestedIp, ipBytes(ip)], [Opt.serverId, ipBytes(SERVER)]]))).toMatchObject({ kind: 'ack' });
    expect(await send(packet('02:00:00:00:00:0c', MessageType.REQUEST, [[Opt.requestedIp, ipBytes(ip)]], { giaddr: '10.0.5.1' }))).toMatchObject({ kind: 'nak' });
    expect(stats.ignored['not-ours']).toBeUndefined();
  });

  it('leaves an INFORM from an address in none of the served subnets unanswered (our mask and router would not fit it)', async () => {
    expect(await send(packet('02:00:00:00:00:0d', MessageType.INFORM, [], { ciaddr: '192.168.7.9' }), { address: '192.168.7.9', port: 68 })).toBeUndefined();
    expect(stats.ignored['inform-foreign']).toBe(1);
  });

  it('serves a direct request without ciaddr from the local subnet', async () => {
    expect(await send(packet('02:00:00:00:00:09', MessageType.DISCOVER))).toMatchObject({ kind: 'offer', router: '10.0.0.254' });
  });
});

describe('full mode: reservations', () => {
  it('stops offering a reservation its node declined (another host uses it), instead of an offer/NAK loop', async () => {
    expect(await send(packet(NODE, MessageType.DISCOVER))).toMatchObject({ kind: 'offer', yiaddr: '10.0.0.50' });
    expect(await send(packet(NODE, MessageType.DECLINE, [[Opt.requestedIp, ipBytes('10.0.0.50')], [Opt.serverId, ipBytes(SERVER)]]))).toBeUndefined();
    for (let i = 0; i < 3; i++) expect(await send(packet(NODE, MessageType.DISCOVER))).toBeUndefined();
    const nak = await send(packet(NODE, MessageType.REQUEST, [[Opt.requestedIp, ipBytes('10.0.0.50')]]));
    expect(nak?.kind).toBe('nak');
    expect(stats).toMatchObject({ offers: 1, declines: 1, naks: 1, claimsRefused: 0 });
    expect(stats.ignored['reservation-declined']).toBe(3);
  });

  it('ignores a DECLINE from a client the address was not given to: an offer to another, another node\'s reservation', async () => {
    const A = '02:00:00:00:0a:01';
    const B = '02:00:00:00:0b:01';
    const offer = await send(packet(A, MessageType.DISCOVER));
    expect(offer?.kind).toBe('offer');
    const offered = (offer as { yiaddr: string }).yiaddr;
    const decline = (mac: string, ip: string) => send(packet(mac, MessageType.DECLINE, [[Opt.requestedIp, ipBytes(ip)], [Opt.serverId, ipBytes(SERVER)]]));
    expect(await decline(B, offered)).toBeUndefined();
    expect(await decline(B, '10.0.0.50')).toBeUndefined();
    expect(stats.ignored['decline-not-holder']).toBe(2);
    expect(stats.declines).toBe(0);
    // A still gets the address it was offered, and n1 its reservation.
    expect(await send(packet(A, MessageType.REQUEST, [[Opt.requestedIp, ipBytes(offered)], [Opt.serverId, ipBytes(SERVER)]]))).toMatchObject({ kind: 'ack', yiaddr: offered });
    expect(await send(packet(NODE, MessageType.DISCOVER))).toMatchObject({ kind: 'offer', yiaddr: '10.0.0.50' });
    // The client that holds it may decline it.
    expect(await decline(A, offered)).toBeUndefined();
    expect(stats.declines).toBe(1);
  });

  it('does not hand a pool address to a node whose reservation is in none of the served subnets', async () => {
    expect(await send(packet(STRAY, MessageType.DISCOVER))).toBeUndefined();
    expect(stats.ignored['reservation-elsewhere']).toBe(1);
    expect(stats.offers).toBe(0);
  });

  it('never offers or ACKs a reservation that is the broadcast or the server\'s own address', async () => {
    expect(await send(packet(BCAST, MessageType.DISCOVER))).toBeUndefined();
    expect(await send(packet(ON_SERVER, MessageType.DISCOVER))).toBeUndefined();
    expect(stats.ignored['reservation-unusable']).toBe(2);
    expect(await send(packet(BCAST, MessageType.REQUEST, [[Opt.requestedIp, ipBytes('10.0.0.255')]]))).toMatchObject({ kind: 'nak' });
    expect(stats).toMatchObject({ offers: 0, acks: 0 });
  });

  it('lists, for the load-time warning, the nodes whose reserved address full mode never hands out', () => {
    expect(unusableReservations(inventory.inventory.nodes.values(), CONFIG.subnets, SERVER)).toEqual([
      { node: 'stray01', ip: '10.0.9.11', problem: 'in none of dhcp.subnets' },
      { node: 'bcast01', ip: '10.0.0.255', problem: 'the broadcast address of 10.0.0.0/24' },
      { node: 'srv01', ip: SERVER, problem: "this server's address (dhcp.server_ip) of 10.0.0.0/24" },
    ]);
  });
});
