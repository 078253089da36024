import { spawnSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { isRackseedError } from '../../server/model/errors.js';
import { openStore, PostgresStore } from '../../server/store/index.js';
import { PG_MIGRATIONS } from '../../server/store/migrations-pg/index.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { describeStoreContract } from './contract.js';

const TEMPLATE = 'rackseed_template';
const LATEST = PG_MIGRATIONS.at(-1)!.version;

let server: PostgresServer;
let databases = 0;

beforeAll(async () => {
  server = await startPostgres();
  // Migrated once; every test then gets a fresh copy (CREATE DATABASE ... TEMPLATE), much faster than migrating each.
  const url = await server.createDatabase(TEMPLATE);
  await (await PostgresStore.open({ url })).close();
});

afterAll(async () => {
  await server?.stop();
});

async function freshDatabase(template?: string): Promise<string> {
  databases += 1;
  return server.createDatabase(`t${databases}`, template);
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describeStoreContract('postgres', async () => {
  const url = await freshDatabase(TEMPLATE);
  // Pool of 4: the contract's racing claims and batches then run on several connections at once.
  const store = await openStore({ kind: 'postgres', url, poolSize: 4 });
  return {
    store,
    openSibling: () => openStore({ kind: 'postgres', url, poolSize: 4 }),
    cleanup: async () => {
      await store.close();
    },
  };
});

describe('postgres store: schema migrations', () => {
  it('records every migration once, however often and however concurrently it runs', async () => {
    const url = await freshDatabase();
    // Four servers starting together on an empty database: one migrates, the others wait for its advisory lock.
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open({ url, poolSize: 2 })));
    await stores[0]!.migrate();
    await Promise.all(stores.map((s) => s.close()));

    const applied = await sql<{ version: number; name: string }>(url, 'SELECT version, name FROM schema_migrations ORDER BY version');
    expect(applied).toEqual(PG_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    const tables = await sql<{ table_name: string }>(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name");
    expect(tables.map((t) => t.table_name)).toEqual(['events', 'leases', 'node_status', 'once_keys', 'runs', 'schema_migrations', 'servers']);
  });

  it('refuses a database written by a newer rackseed, and leaves it untouched', async () => {
    const url = await freshDatabase(TEMPLATE);
    await sql(url, 'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, 0)', [LATEST + 1, 'future']);

    const e = await errorOf(PostgresStore.open({ url }));

    expect(isRackseedError(e) && e.code).toBe('STORE_MIGRATION');
    expect(String((e as Error).message)).toMatch(new RegExp(`schema version\\(s\\) ${LATEST + 1} .*newer rackseed`));
    expect((await sql<{ n: number }>(url, 'SELECT count(*)::int AS n FROM schema_migrations'))[0]!.n).toBe(PG_MIGRATIONS.length + 1);
  });

  it('rolls a failed migration back and reports it, keeping the earlier version', async () => {
    const url = await freshDatabase(TEMPLATE);
    // Another tool created a table a future migration wants: that step must fail as a whole.
    await sql(url, 'CREATE TABLE clash (x int)');
    const { migratePostgres } = await import('../../server/store/postgres-migrate.js');
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    try {
      const broken = [...PG_MIGRATIONS, { version: LATEST + 1, name: 'clash', sql: 'CREATE TABLE half_done (x int); CREATE TABLE clash (y int);' }];
      const e = await errorOf(migratePostgres(pool, url, broken));
      expect(isRackseedError(e) && e.code).toBe('STORE_MIGRATION');
      expect(String((e as Error).message)).toMatch(/migration \d+ "clash" failed/);
    } finally {
      await pool.end();
    }
    expect(await sql(url, "SELECT to_regclass('half_done') AS t")).toEqual([{ t: null }]);
    expect((await sql<{ v: number }>(url, 'SELECT max(version) AS v FROM schema_migrations'))[0]!.v).toBe(LATEST);
  });
});

describe('postgres store: connections', () => {
  it('runs every connection with synchronous_commit on, whatever the server default', async () => {
    const url = await freshDatabase(TEMPLATE);
    await sql(url, `ALTER DATABASE ${pg.escapeIdentifier(`t${databases}`)} SET synchronous_commit = off`);
    const store = await PostgresStore.open({ url, poolSize: 3 });
    try {
      expect(await store.settings()).toEqual({ synchronousCommit: 'on', poolSize: 3 });
    } finally {
      await store.close();
    }
    // The database default really is off: the store's own setting is what made it durable.
    expect(await sql(url, 'SHOW synchronous_commit')).toEqual([{ synchronous_commit: 'off' }]);
    // In a process of its own (pg warns once per process), with queries on two connections at once: the setting runs
    // before a query is handed the connection, not beside it (pg deprecated queueing a query behind another, and
    // printed that at every server start).
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
      `const { PostgresStore } = await import(${JSON.stringify(path.resolve('server/store/postgres.ts'))}); const s = await PostgresStore.open({ url: ${JSON.stringify(url)}, poolSize: 2 }); console.log(JSON.stringify(await s.settings())); await Promise.all([s.listNodes(), s.listNodes(), s.listLeases()]); await s.close();`,
    ], { encoding: 'utf8', timeout: 60_000 });
    expect(child.stdout.trim()).toBe('{"synchronousCommit":"on","poolSize":2}');
    expect(child.stderr).not.toMatch(/Warning/);
    // Startup options in the URL (a search_path, say) do not undo it either.
    const withOptions = await PostgresStore.open({ url: `${url}?options=${encodeURIComponent('-c synchronous_commit=off')}` });
    try {
      expect((await withOptions.settings()).synchronousCommit).toBe('on');
    } finally {
      await withOptions.close();
    }
  });

  it('reports an unreachable database as STORE_UNAVAILABLE without the password', async () => {
    const url = server.url('postgres').replace('postgres@', 'postgres:s3cret@').replace(/:\d+\//, ':1/');
    const e = await errorOf(PostgresStore.open({ url }));
    expect(isRackseedError(e) && e.code).toBe('STORE_UNAVAILABLE');
    expect(String((e as Error).message)).toMatch(/cannot use PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/postgres/);
    expect(String((e as Error).message)).not.toContain('s3cret');
  });

  it('keeps no more connections than its pool size, however many calls are in flight', async () => {
    const url = await freshDatabase(TEMPLATE);
    const store = await PostgresStore.open({ url, poolSize: 2 });
    try {
      const T = Date.now();
      const claims = Array.from({ length: 50 }, (_, i) =>
        store.claimLease({ ip: `10.5.0.${i}`, mac: `52:54:00:05:00:${i.toString(16).padStart(2, '0')}`, state: 'bound', expiresAt: T + 60_000 }, T),
      );
      let done = false;
      const all = Promise.all(claims).finally(() => {
        done = true;
      });
      const counts: number[] = [];
      while (!done) {
        const rows = await sql<{ n: number }>(url, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'rackseed'");
        counts.push(rows[0]!.n);
      }
      await all;
      expect(Math.max(...counts)).toBeLessThanOrEqual(2);
      expect(await store.listLeases()).toHaveLength(50);
    } finally {
      await store.close();
    }
  });
});

describe('postgres store: retention', () => {
  it('does not forget a discovered machine whose boot is being recorded at that moment (its row lock is respected)', async () => {
    const url = await freshDatabase(TEMPLATE);
    const store = await PostgresStore.open({ url, poolSize: 2 });
    const mac = '52:54:00:0f:00:01';
    const booting = new pg.Client({ connectionString: url });
    await booting.connect();
    try {
      expect((await store.recordEvent({ node: mac, event: { type: 'discovered', mac, facts: {} }, at: 100 })).ok).toBe(true);
      // A boot's touch of the machine, as PgNodes.touch makes it: the row locked, last seen now, not yet committed.
      await booting.query('BEGIN');
      await booting.query('SELECT id FROM node_status WHERE id = $1 FOR UPDATE', [mac]);
      await booting.query('UPDATE node_status SET last_seen_at = $2 WHERE id = $1', [mac, 10_000]);
      let settled = false;
      const pruning = store.prune({ discoveredSeenBefore: 500, keepLastRunsPerNode: 1 }).finally(() => (settled = true));
      // The prune either finishes around the locked row or blocks on it (a plain SELECT, then a DELETE that waits for
      // the lock and deletes after the commit, whatever the row says by then); the boot commits only after one of them.
      const blockedOnLock = async () =>
        (await sql<{ n: number }>(url, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))[0]!.n > 0;
      await expect.poll(async () => settled || (await blockedOnLock()), { timeout: 10_000, interval: 20 }).toBe(true);
      await booting.query('COMMIT');
      expect(await pruning).toEqual({ runs: 0, discovered: 0, discoveredEvents: 0 });
      expect(await store.getNode(mac)).toMatchObject({ id: mac, state: 'discovered', lastSeenAt: 10_000 });
    } finally {
      await booting.end();
      await store.close();
    }
  });
});
