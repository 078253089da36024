import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import Database from 'better-sqlite3';
import { dirname } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { isRackseedError } from '../../../server/model/errors.js';
import { openStore, SqliteStore } from '../../../server/store/index.js';
import { MIGRATIONS, type Migration } from '../../../server/store/migrations/index.js';
import { migrateSqlite, schemaVersion } from '../../../server/store/sqlite-migrate.js';
import { RUN_FLEET_QUERIES, RUN_PRUNE_QUERIES } from '../../../server/store/sqlite-runs.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LATEST = MIGRATIONS.at(-1)!.version;

let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rackseed-sqlite-'));
  path = join(dir, 'observed.db');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function raw<T>(fn: (db: Database.Database) => T): T {
  const db = new Database(path);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function appliedVersions(): number[] {
  return raw((db) => (db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]).map((r) => r.version));
}

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('sqlite connection settings', () => {
  it('runs in WAL mode with synchronous FULL, foreign keys and a busy timeout', async () => {
    const store = SqliteStore.open(path);
    try {
      expect(store.settings()).toEqual({ journalMode: 'wal', synchronous: 2, foreignKeys: true, busyTimeoutMs: 5_000 });
    } finally {
      await store.close();
    }
    // WAL is a property of the file, so a plain connection sees it too.
    expect(raw((db) => db.pragma('journal_mode', { simple: true }))).toBe('wal');
  });

  it('a file that cannot be opened is STORE_UNAVAILABLE naming the file and the SQLite error code', () => {
    // A directory where the file should be: SQLite itself refuses it.
    const missingDir = dirname(path);
    expect(() => SqliteStore.open(missingDir)).toThrow(expect.objectContaining({ code: 'STORE_UNAVAILABLE', message: expect.stringMatching(new RegExp(`^cannot open the SQLite store ${missingDir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: .*\\(SQLITE_CANTOPEN\\)$`)) }));
  });
});

describe('sqlite migrations', () => {
  it('records every migration once, however often it runs', async () => {
    const store = await openStore({ kind: 'sqlite', path });
    await store.migrate();
    await store.migrate();
    await store.close();
    const again = await openStore({ kind: 'sqlite', path });
    await again.close();

    expect(appliedVersions()).toEqual(MIGRATIONS.map((m) => m.version));
    expect(raw((db) => schemaVersion(db))).toBe(LATEST);
  });

  it('refuses a database written by a newer rackseed', async () => {
    await (await openStore({ kind: 'sqlite', path })).close();
    raw((db) => db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(LATEST + 1, 'future', 0));

    const err = await errorOf(openStore({ kind: 'sqlite', path }));
    expect(isRackseedError(err) && err.code).toBe('STORE_MIGRATION');
    expect((err as Error).message).toMatch(/newer rackseed/);
  });

  it('refuses on migrate() when another process upgraded the file meanwhile', async () => {
    const store = await openStore({ kind: 'sqlite', path });
    try {
      raw((db) => db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(LATEST + 5, 'future', 0));
      const err = await errorOf(store.migrate());
      expect(isRackseedError(err) && err.code).toBe('STORE_MIGRATION');
    } finally {
      await store.close();
    }
  });

  it('applies only the new migrations to an existing database, in order', () => {
    const one: Migration = { version: 1, name: 'one', sql: 'CREATE TABLE a (x INTEGER)' };
    const two: Migration = { version: 2, name: 'two', sql: 'ALTER TABLE a ADD COLUMN y TEXT; CREATE TABLE b (z INTEGER)' };
    raw((db) => {
      migrateSqlite(db, path, [one]);
      db.prepare('INSERT INTO a (x) VALUES (1)').run();
      migrateSqlite(db, path, [one, two]);
      migrateSqlite(db, path, [one, two]);
      expect(db.prepare('SELECT x, y FROM a').all()).toEqual([{ x: 1, y: null }]);
      expect(schemaVersion(db)).toBe(2);
    });
  });

  it('upgrades a version 3 store: node rows survive, the unused next group is dropped, a reimage remembers the group left', async () => {
    raw((db) => {
      migrateSqlite(db, path, MIGRATIONS.filter((m) => m.version <= 3));
      db.prepare(`INSERT INTO node_status (id, state, reimage_requested, next_group, next_role, facts, updated_at) VALUES ('n1', 'ready', 1, 'gpu', 'worker', '{"a":1}', 5)`).run();
    });
    const store = await openStore({ kind: 'sqlite', path });
    try {
      expect(await store.getNode('n1')).toEqual({ id: 'n1', state: 'ready', reimageRequested: true, facts: { a: 1 }, updatedAt: 5 });
      await store.recordEvent({ node: 'n1', event: { type: 'reimage_cancelled' } });
      await store.recordEvent({ node: 'n1', event: { type: 'reimage_requested', fromGroup: 'slurm' } });
      expect(await store.getNode('n1')).toMatchObject({ reimageRequested: true, reimageFromGroup: 'slurm' });
    } finally {
      await store.close();
    }
    expect(appliedVersions()).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it('the fleet-wide run queries and pruning walk an index: no full scan and no sort, however many runs there are', async () => {
    const store = await openStore({ kind: 'sqlite', path });
    await store.close();
    raw((db) => {
      const plan = (sql: string) =>
        db
          .prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .all({ limit: 10, kind: 'audit', finished_at: 1, error: '{}', before: 1, server: 's', ids: '[]', keep: 1, after_started: 0, after_id: '', nodes: '["a"]' })
          .map((r) => (r as { detail: string }).detail)
          .join(' | ');
      // Before migration 006 these read "SCAN runs | USE TEMP B-TREE FOR ORDER BY" (and the abandon a SCAN).
      expect(plan(RUN_FLEET_QUERIES.newest)).toMatch(/^SCAN runs USING INDEX runs_started$/);
      expect(plan(RUN_FLEET_QUERIES.newestOfKind)).toMatch(/^SEARCH runs USING INDEX runs_kind_started \(kind=\?\)$/);
      expect(plan(RUN_FLEET_QUERIES.abandon)).toMatch(/USING INDEX runs_running/);
      // Several nodes' newest: their ids and start times come from the index alone; whole rows are read by id.
      expect(plan(RUN_FLEET_QUERIES.newestOfNodes)).toMatch(/SEARCH runs USING COVERING INDEX runs_node_kind_started \(node=\?\)/);
      expect(plan(RUN_FLEET_QUERIES.newestOfNodes)).not.toMatch(/SCAN runs\b/);
      // Pruning: the oldest runs in order, and for each a look at the same node's few newer runs of its kind only.
      expect(plan(RUN_PRUNE_QUERIES.candidates)).toMatch(/^SEARCH runs USING INDEX runs_started /);
      expect(plan(RUN_PRUNE_QUERIES.delete)).not.toMatch(/SCAN (runs|n|r)\b/);
      expect(plan(RUN_PRUNE_QUERIES.delete).match(/SEARCH n USING INDEX runs_node_kind_started \(node=\? AND kind=\?/g)).toHaveLength(2);
    });
  });

  it('rolls a failing migration back entirely, keeping the ones before it', () => {
    const one: Migration = { version: 1, name: 'one', sql: 'CREATE TABLE a (x INTEGER)' };
    const bad: Migration = { version: 2, name: 'bad', sql: 'CREATE TABLE b (z INTEGER); INSERT INTO nowhere VALUES (1)' };
    raw((db) => {
      const err = (() => {
        try {
          migrateSqlite(db, path, [one, bad]);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(isRackseedError(err) && err.code).toBe('STORE_MIGRATION');
      expect(schemaVersion(db)).toBe(1);
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
      expect(tables).toContain('a');
      expect(tables).not.toContain('b');
    });
  });

  it('refuses a migration list that is not strictly ascending', () => {
    const m = (version: number): Migration => ({ version, name: `m${version}`, sql: 'SELECT 1' });
    raw((db) => {
      expect(() => migrateSqlite(db, path, [m(2), m(1)])).toThrow(/ascending/);
      expect(() => migrateSqlite(db, path, [m(1), m(1)])).toThrow(/ascending/);
    });
  });
});

describe('sqlite durability', () => {
  it('keeps data across a clean close and reopen', async () => {
    const store = await openStore({ kind: 'sqlite', path });
    await store.recordEvent({ node: 'n1', event: { type: 'assigned', group: 'g' }, at: 1 });
    await store.claimLease({ ip: '10.0.0.1', mac: '52:54:00:00:00:01', state: 'bound', expiresAt: 9 }, 1);
    await store.close();

    const reopened = await openStore({ kind: 'sqlite', path });
    try {
      expect((await reopened.getNode('n1'))?.state).toBe('assigned');
      expect((await reopened.getLeaseByIp('10.0.0.1'))?.mac).toBe('52:54:00:00:00:01');
    } finally {
      await reopened.close();
    }
  });

  // SIGKILL loses the process, not the page cache, so this proves writes are committed before they are
  // acknowledged; surviving power loss on top of that is what synchronous = FULL (checked above) is for.
  it('keeps every acknowledged write when the writer is SIGKILLed mid-stream', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/store-child.ts', path], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: number[] = [];
    let stderr = '';
    let buffered = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));

    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^acked (\d+)$/.exec(line);
        if (m) acked.push(Number(m[1]));
      }
      if (acked.length >= 200 && !child.killed) child.kill('SIGKILL');
    });

    const signal = await exited;
    expect(signal, `writer ended on its own after ${acked.length} acks: ${stderr}`).toBe('SIGKILL');
    expect(acked.length).toBeGreaterThanOrEqual(200);
    expect(acked).toEqual(acked.map((_, i) => i));

    const store = await openStore({ kind: 'sqlite', path });
    try {
      const fromEvents = (await store.listEvents()).map((e) => (e.event.type === 'discovered' ? Number(e.event.facts.n) : -1));
      const fromLeases = (await store.listLeases()).map((l) => Number(l.hostname?.replace('child-', '')));
      const present = new Set([...fromEvents, ...fromLeases]);
      const missing = acked.filter((n) => !present.has(n));
      expect(missing).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
