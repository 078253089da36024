import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DhcpConfig } from '../../../server/config.js';
import { bootContextFor } from '../../../server/dhcp/boot-context.js';
import { FullModeHandler } from '../../../server/dhcp/full-mode.js';
import { LeaseBook } from '../../../server/dhcp/lease-book.js';
import { emptyDhcpStats, type DhcpStats } from '../../../server/dhcp/stats.js';
import { createLogger } from '../../../server/log.js';
import { buildPacket } from '../../../server/protocol/dhcp/builder.js';
import { MessageType, Opt } from '../../../server/protocol/dhcp/options.js';
import { BOOTREQUEST } from '../../../server/protocol/dhcp/packet.js';
import { InventoryService } from '../../../server/services/inventory-service.js';
import { SqliteStore } from '../../../server/store/sqlite.js';

/**
 * Two full-mode servers over one store, as two rackseed servers over one PostgreSQL: each has its own lease book
 * (its own partial view), the store arbitrates. SQLite stands in for the shared database here; the PostgreSQL store
 * passes the same contract, including claims racing through two stores (test/store/contract.ts).
 */
const TWIN_A = '52:54:00:77:00:01';
const TWIN_B = '52:54:00:77:00:02';
const INVENTORY = `cluster:
  name: t
groups:
  compute: {}
nodes:
  - name: twin
    macs: [${TWIN_A}, ${TWIN_B}]
    ip: 10.9.0.50
    group: compute
`;
const log = createLogger('silent');

interface Server {
  handler: FullModeHandler;
  book: LeaseBook;
  stats: DhcpStats;
  serverIp: string;
}

let work: string;
let store: SqliteStore;
let inventory: InventoryService;
let clock: number;

function config(serverIp: string): DhcpConfig {
  return {
    mode: 'full',
    serverIp,
    port: 67,
    proxyPort: 4011,
    // The same subnet and pool on both: the worst case, where every address is contested.
    subnets: [{ cidr: '10.9.0.0/24', pool: { start: '10.9.0.100', end: '10.9.0.101' }, routers: [], dns: [] }],
    leaseSeconds: 3600,
    offerSeconds: 60,
    declineSeconds: 3600,
  };
}

async function server(serverIp: string, name: string): Promise<Server> {
  const book = new LeaseBook(store, name, () => clock, true);
  await book.load();
  book.setReservations(new Map([[(10 << 24) + (9 << 16) + 50, 'twin']]));
  const stats = emptyDhcpStats();
  const handler = new FullModeHandler(config(serverIp), inventory, book, bootContextFor(serverIp, `http://${serverIp}:8080`, inventory), stats, log);
  return { handler, book, stats, serverIp };
}

function packet(mac: string, type: number, options: Array<[number, Uint8Array]> = []) {
  const chaddr = Uint8Array.from(mac.split(':').map((h) => Number.parseInt(h, 16)));
  return buildPacket({ op: BOOTREQUEST, xid: 1, chaddr, options: new Map<number, Uint8Array>([[Opt.messageType, Uint8Array.of(type)], ...options]) });
}

const ipBytes = (s: string) => Uint8Array.from(s.split('.').map(Number));
const source = { address: '0.0.0.0', port: 68 };

async function discover(s: Server, mac: string): Promise<string | undefined> {
  const out = await s.handler.handle({ packet: packet(mac, MessageType.DISCOVER), receivedOn: 'dhcp', source });
  return out?.kind === 'offer' ? out.packet.yiaddr : undefined;
}

async function request(s: Server, mac: string, ip: string): Promise<'ack' | 'nak' | undefined> {
  const out = await s.handler.handle({
    packet: packet(mac, MessageType.REQUEST, [[Opt.requestedIp, ipBytes(ip)], [Opt.serverId, ipBytes(s.serverIp)]]),
    receivedOn: 'dhcp',
    source,
  });
  return out?.kind === 'ack' || out?.kind === 'nak' ? out.kind : undefined;
}

async function release(s: Server, mac: string, ip: string): Promise<void> {
  const p = buildPacket({ op: BOOTREQUEST, xid: 2, ciaddr: ip, chaddr: Uint8Array.from(mac.split(':').map((h) => Number.parseInt(h, 16))), options: new Map([[Opt.messageType, Uint8Array.of(MessageType.RELEASE)], [Opt.serverId, ipBytes(s.serverIp)]]) });
  await s.handler.handle({ packet: p, receivedOn: 'dhcp', source: { address: ip, port: 68 } });
}

beforeEach(() => {
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-dhcp-shared-'));
  writeFileSync(path.join(work, 'inventory.yaml'), INVENTORY);
  inventory = new InventoryService(path.join(work, 'inventory.yaml'), log);
  store = SqliteStore.open(path.join(work, 'rackseed.db'));
  clock = Date.now();
});

afterEach(async () => {
  await store.close();
  rmSync(work, { recursive: true, force: true });
});

describe('full mode with two servers sharing one store', () => {
  it('NAKs an address the other server bound meanwhile, then offers the client another one', async () => {
    const a = await server('10.9.0.1', 'boot-a');
    const b = await server('10.9.0.2', 'boot-b');
    expect(await discover(a, '02:00:00:00:00:01')).toBe('10.9.0.100');
    // B has not seen A's offer (offers are in memory only): it offers the same address to another client.
    expect(await discover(b, '02:00:00:00:00:02')).toBe('10.9.0.100');
    expect(await request(a, '02:00:00:00:00:01', '10.9.0.100')).toBe('ack');
    expect(await request(b, '02:00:00:00:00:02', '10.9.0.100')).toBe('nak');
    expect(b.stats.claimsRefused).toBe(1);
    expect(b.stats.acks).toBe(0);
    // The NAKed client starts over and gets the other address, which B can bind.
    expect(await discover(b, '02:00:00:00:00:02')).toBe('10.9.0.101');
    expect(await request(b, '02:00:00:00:00:02', '10.9.0.101')).toBe('ack');
    const leases = (await store.listLeases()).map((l) => [l.ip, l.mac, l.state, l.server]);
    expect(leases).toEqual([
      ['10.9.0.100', '02:00:00:00:00:01', 'bound', 'boot-a'],
      ['10.9.0.101', '02:00:00:00:00:02', 'bound', 'boot-b'],
    ]);
  });

  it('gives a reservation to one MAC of the node when both servers try at once, and turns the other away', async () => {
    const a = await server('10.9.0.1', 'boot-a');
    const b = await server('10.9.0.2', 'boot-b');
    expect(await discover(a, TWIN_A)).toBe('10.9.0.50');
    expect(await discover(b, TWIN_B)).toBe('10.9.0.50');
    const [ra, rb] = await Promise.all([request(a, TWIN_A, '10.9.0.50'), request(b, TWIN_B, '10.9.0.50')]);
    expect([ra, rb].sort()).toEqual(['ack', 'nak']);
    const loser = ra === 'nak' ? { s: a, mac: TWIN_A } : { s: b, mac: TWIN_B };
    expect(loser.s.stats.claimsRefused).toBe(1);
    // Its book now knows who holds the reservation: no offer, rather than an offer it would have to NAK.
    expect(await discover(loser.s, loser.mac)).toBeUndefined();
    expect(loser.s.stats.ignored['reservation-held']).toBe(1);
    const held = await store.getLeaseByIp('10.9.0.50');
    expect(held?.mac).toBe(ra === 'ack' ? TWIN_A : TWIN_B);
  });

  it('re-reads the store when its view says the pool is full, and finds what the other server released', async () => {
    const a = await server('10.9.0.1', 'boot-a');
    const b = await server('10.9.0.2', 'boot-b');
    for (const [mac, ip] of [['02:00:00:00:00:01', '10.9.0.100'], ['02:00:00:00:00:02', '10.9.0.101']] as const) {
      expect(await discover(a, mac)).toBe(ip);
      expect(await request(a, mac, ip)).toBe('ack');
    }
    // B learns through refused claims that both are taken; its refresh on the empty pool confirms it.
    for (const ip of ['10.9.0.100', '10.9.0.101']) {
      expect(await discover(b, '02:00:00:00:00:03')).toBe(ip);
      expect(await request(b, '02:00:00:00:00:03', ip)).toBe('nak');
    }
    expect(await discover(b, '02:00:00:00:00:03')).toBeUndefined();
    expect(b.stats.ignored['pool-exhausted']).toBe(1);
    expect(b.stats.claimsRefused).toBe(2);

    await release(a, '02:00:00:00:00:01', '10.9.0.100');
    // Within REFRESH_MS B does not hit the store again: a pool-exhausted storm costs no more than one read per interval.
    expect(await discover(b, '02:00:00:00:00:03')).toBeUndefined();
    clock += 2_000;
    expect(await discover(b, '02:00:00:00:00:03')).toBe('10.9.0.100');
    expect(await request(b, '02:00:00:00:00:03', '10.9.0.100')).toBe('ack');
  });

  it('never re-reads the store when it is not shared', async () => {
    const book = new LeaseBook(store, 'solo', () => clock);
    expect(await book.refresh()).toBe(false);
    clock += 60_000;
    expect(await book.refresh()).toBe(false);
  });
});
