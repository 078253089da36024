import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PostgresStore } from '../../server/store/index.js';
import type { ClaimResult, Lease, ObservedStore } from '../../server/store/types.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { TSX_IMPORT } from '../support/tsx.js';

/**
 * Three "servers" share one database and hand out addresses from one small pool at the same moment: two stores in this
 * process (separate connection pools) and one in a child process. Each claims an address for every MAC, in its own
 * order, choosing addresses differently, several batches in flight at once. The final table is then checked for the
 * two things DHCP must never do: give an address to two MACs, or give a MAC two addresses.
 */

const MACS = 240;
const ADDRESSES = 100;
const BATCH = 8;
const IN_FLIGHT = 4;
const STORE_MODULE = fileURLToPath(new URL('../../server/store/postgres.ts', import.meta.url));

const mac = (i: number): string => `52:54:00:07:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const ip = (i: number): string => `10.7.0.${i % ADDRESSES}`;

interface Attempt {
  racer: string;
  ip: string;
  mac: string;
  result: ClaimResult;
}

/** Racer r's plan: every MAC once, in a racer-specific order, each asking for a racer-specific address. */
function plan(racer: number, expiresAt: number): Array<Omit<Lease, 'updatedAt'>> {
  const order = Array.from({ length: MACS }, (_, i) => (i * (7 + 4 * racer) + racer * 13) % MACS);
  return order.map((m) => ({ ip: ip(m * (racer + 1) + racer * 31), mac: mac(m), state: 'bound', expiresAt, server: `racer${racer}` }));
}

/** Runs a plan as batches, IN_FLIGHT at a time; the same code runs in the child process (as its source text). */
async function race(store: Pick<ObservedStore, 'claimLeases'>, leases: Array<Omit<Lease, 'updatedAt'>>, now: number, inFlight: number, batch: number): Promise<ClaimResult[]> {
  const batches: Array<Array<Omit<Lease, 'updatedAt'>>> = [];
  for (let i = 0; i < leases.length; i += batch) batches.push(leases.slice(i, i + batch));
  const results: ClaimResult[][] = new Array(batches.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let b = next++; b < batches.length; b = next++) results[b] = await store.claimLeases(batches[b]!, now);
    }),
  );
  return results.flat();
}

/** The third racer: a separate process with its own store, like a second rackseed server. */
async function raceInChild(url: string, leases: Array<Omit<Lease, 'updatedAt'>>, now: number): Promise<ClaimResult[]> {
  const code = `
    const { PostgresStore } = await import(${JSON.stringify(STORE_MODULE)});
    const [url, leasesJson, now, inFlight, batch] = process.argv.slice(1);
    const race = ${race.toString()};
    const store = await PostgresStore.open({ url, poolSize: Number(inFlight) });
    try {
      process.stdout.write(JSON.stringify(await race(store, JSON.parse(leasesJson), Number(now), Number(inFlight), Number(batch))));
    } finally {
      await store.close();
    }`;
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, ['--import', TSX_IMPORT, '--input-type=module', '-e', code, url, JSON.stringify(leases), String(now), String(IN_FLIGHT), String(BATCH)], {
    maxBuffer: 64 * 1024 * 1024,
    timeout: 120_000,
  });
  return JSON.parse(stdout) as ClaimResult[];
}

let server: PostgresServer;
let url: string;

beforeAll(async () => {
  server = await startPostgres();
  url = await server.createDatabase('race');
  await (await PostgresStore.open({ url })).close();
});

afterAll(async () => {
  await server?.stop();
});

describe('postgres store: servers racing for addresses', () => {
  it('never gives an address to two MACs nor a MAC two addresses', async () => {
    const now = Date.now();
    const expiresAt = now + 3_600_000;
    const plans = [0, 1, 2].map((r) => plan(r, expiresAt));
    const a = await PostgresStore.open({ url, poolSize: IN_FLIGHT });
    const b = await PostgresStore.open({ url, poolSize: IN_FLIGHT });
    let outcomes: ClaimResult[][];
    try {
      outcomes = await Promise.all([race(a, plans[0]!, now, IN_FLIGHT, BATCH), race(b, plans[1]!, now, IN_FLIGHT, BATCH), raceInChild(url, plans[2]!, now)]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    const attempts: Attempt[] = outcomes.flatMap((results, r) => {
      expect(results).toHaveLength(MACS);
      return results.map((result, i) => ({ racer: `racer${r}`, ip: plans[r]![i]!.ip, mac: plans[r]![i]!.mac, result }));
    });

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const q = async <T extends pg.QueryResultRow>(text: string): Promise<T[]> => (await client.query<T>(text)).rows;
      const active = await q<{ ip: string; mac: string; server: string }>("SELECT ip, mac, server FROM leases WHERE state IN ('offered', 'bound') ORDER BY ip");

      // The two invariants, on the final table.
      expect(await q("SELECT ip FROM leases GROUP BY ip HAVING count(*) > 1")).toEqual([]);
      expect(await q("SELECT mac FROM leases WHERE state IN ('offered', 'bound') GROUP BY mac HAVING count(*) > 1")).toEqual([]);
      expect(new Set(active.map((l) => l.mac)).size).toBe(active.length);

      // Contention really happened.
      const refused = attempts.filter((x) => !x.result.ok);
      expect(refused.length).toBeGreaterThan(0);
      expect(active.length).toBeGreaterThan(0);

      // Every lease in the table is one that some server was told it got...
      const granted = new Set(attempts.filter((x) => x.result.ok).map((x) => `${x.ip} ${x.mac} ${x.racer}`));
      for (const l of active) expect(granted).toContain(`${l.ip} ${l.mac} ${l.server}`);
      // ...and no server was refused an address in favour of the MAC that asked for it.
      for (const x of refused) if (!x.result.ok) expect(x.result.heldBy.mac).not.toBe(x.mac);
      // A MAC that no server could place still holds nothing: a refusal stores nothing.
      const placed = new Set(attempts.filter((x) => x.result.ok).map((x) => x.mac));
      const macsInTable = await q<{ mac: string }>('SELECT DISTINCT mac FROM leases');
      for (const m of macsInTable) expect(placed).toContain(m.mac);
    } finally {
      await client.end();
    }
  });
});
