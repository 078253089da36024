import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LeaseBook } from '../../../server/dhcp/lease-book.js';
import { parseCidr, parseIpv4 } from '../../../server/model/ipv4.js';
import { chooseOffer } from '../../../server/protocol/dhcp/lease-decision.js';
import { SqliteStore } from '../../../server/store/sqlite.js';

const MAC = '52:54:00:88:00:01';
const NOW = 1_700_000_000_000;
let work: string;
let store: SqliteStore;

beforeEach(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-lease-book-'));
  store = SqliteStore.open(path.join(work, 'rackseed.db'));
  await store.migrate();
});
afterEach(async () => {
  await store.close();
  rmSync(work, { recursive: true, force: true });
});

describe('lease book: the address a client had', () => {
  it("is its live lease, not an old released row that sorts after it (the client would be moved off its address)", async () => {
    // Another server released .200 for this MAC; this one bound .150 (overlapping pools, a removed reservation).
    expect((await store.claimLease({ ip: '10.81.0.200', mac: MAC, state: 'bound', expiresAt: NOW + 3_600_000, server: 'b' }, NOW - 60_000)).ok).toBe(true);
    expect(await store.releaseLease('10.81.0.200', MAC)).toBe(true);
    expect((await store.claimLease({ ip: '10.81.0.150', mac: MAC, state: 'bound', expiresAt: NOW + 3_600_000, server: 'a' }, NOW)).ok).toBe(true);
    expect((await store.getLeaseByMac(MAC))?.ip).toBe('10.81.0.150');
    const book = new LeaseBook(store, 'a', () => NOW);
    await book.load();
    expect(book.lastAddressOf(MAC)).toBe(parseIpv4('10.81.0.150'));
  });

  it('is the released address when the client holds nothing live (it gets its old address back)', async () => {
    expect((await store.claimLease({ ip: '10.81.0.200', mac: MAC, state: 'bound', expiresAt: NOW + 3_600_000, server: 'a' }, NOW - 60_000)).ok).toBe(true);
    expect(await store.releaseLease('10.81.0.200', MAC)).toBe(true);
    const book = new LeaseBook(store, 'a', () => NOW);
    await book.load();
    expect(book.lastAddressOf(MAC)).toBe(parseIpv4('10.81.0.200'));
  });
});

describe('lease book: memory', () => {
  it('remembers a last address only for MACs whose row it still is: 5,000 MACs through a pool of 20 leave at most 20', async () => {
    let now = NOW;
    const book = new LeaseBook(store, 'a', () => now);
    await book.load();
    const scope = { subnet: parseCidr('10.81.0.0/24')!, pool: { start: parseIpv4('10.81.0.100')!, end: parseIpv4('10.81.0.119')! } };
    let offered = 0;
    for (let i = 0; i < 5_000; i++) {
      // Offers expire after 60 s; a new batch of MACs arrives every 61 s (a starvation tool, or randomised MACs).
      if (i % 20 === 0) now += 61_000;
      const mac = `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      const d = chooseOffer({ mac }, scope, book);
      if (d.kind !== 'offer') continue;
      book.offer(d.ip, mac, 60);
      offered++;
    }
    expect(offered).toBe(5_000);
    // Before: 5,000, one per MAC ever offered an address.
    expect(book.rememberedMacs).toBeLessThanOrEqual(20);
  });
});
