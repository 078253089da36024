import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LeaseBook } from '../../../server/dhcp/lease-book.js';
import { parseIpv4 } from '../../../server/model/ipv4.js';
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
