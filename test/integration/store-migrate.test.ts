import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { copySqliteToPostgres } from '../../server/store/copy.js';
import { PostgresStore, SqliteStore } from '../../server/store/index.js';
import type { ObservedStore } from '../../server/store/types.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { TSX_IMPORT } from '../support/tsx.js';

const CLI = resolve(import.meta.dirname, '../../server/cli/main.ts');
const T = Date.now();

let server: PostgresServer;
let dir: string;
let sqlitePath: string;

/** The real `rackseed` entry point in its own process, as an operator runs it. */
async function rackseed(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, ['--import', TSX_IMPORT, CLI, ...args], {
      env: { ...process.env, RACKSEED_CONFIG: '/nonexistent.yaml', RACKSEED_DATABASE_URL: '' },
      timeout: 120_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** A single server's store with some of everything, including the awkward parts. */
async function populate(store: ObservedStore): Promise<void> {
  for (let i = 0; i < 30; i++) {
    const node = `n${String(i).padStart(3, '0')}`;
    const mac = `52:54:00:09:00:${i.toString(16).padStart(2, '0')}`;
    await store.recordEvents([
      { node, event: { type: 'discovered', mac, facts: { cores: i, gpu: i % 2 === 0, serial: `S${i}`, bmc: null } }, at: T + i },
      { node, event: { type: 'assigned', group: i % 3 === 0 ? 'gpu' : 'compute' }, at: T + i + 1 },
      { node, event: { type: 'provision_started' }, at: T + i + 2 },
      { node, event: { type: 'stage', stage: 'unpack', detail: { bytes: 1234 * i, nested: { ok: true, list: [1, 'two', null] } } }, at: T + i + 3 },
      ...(i % 5 === 0 ? [{ node, event: { type: 'failed' as const, reason: 'disk "sda" missing\nretry', stage: 'partition' }, at: T + i + 4 }] : []),
      // Rejected (not provisioning any more for the failed ones), so it stores nothing.
      { node, event: { type: 'installed' }, at: T + i + 5 },
    ]);
    if (i % 4 === 0) await store.touchNode(node, { facts: { bios: `2.${i}`, 'ünïcode ✓': 'yes' }, seenAt: T + 100 + i });
    await store.claimLease({ ip: `10.9.0.${i + 10}`, mac, state: i % 3 === 0 ? 'offered' : 'bound', expiresAt: T + 3_600_000 + i, hostname: node, clientId: `01:${mac}`, server: 'rackseed' }, T + i);
  }
  // A discovered machine renamed into an inventory node: events of one node with gaps in their ids.
  await store.recordEvent({ node: '52:54:00:09:01:01', event: { type: 'discovered', mac: '52:54:00:09:01:01', facts: { x: 1 } }, at: T + 200 });
  await store.recordEvent({ node: 'n001', event: { type: 'reimage_requested', fromGroup: 'gpu' }, at: T + 201 });
  await store.renameNode('52:54:00:09:01:01', 'late01');
  // Leases in every state, one with no optional fields.
  await store.claimLease({ ip: '10.9.1.1', mac: '52:54:00:09:02:01', state: 'bound', expiresAt: T + 10 }, T);
  await store.claimLease({ ip: '10.9.1.2', mac: '52:54:00:09:02:01', state: 'bound', expiresAt: T + 10_000 }, T + 1);
  await store.releaseLease('10.9.0.11', '52:54:00:09:00:01');
  await store.declineLease('10.9.1.3', '52:54:00:09:02:02', T + 600_000);
  expect(await store.useOnce('plan:n001:abc', T + 600_000, T)).toBe(true);
  expect(await store.useOnce('plan:n002:def', T + 900_000, T)).toBe(true);
  await store.createRun({ id: 'run-1', node: 'n001', kind: 'apply', result: 'running', startedAt: T, summary: {}, details: null });
  await store.finishRun('run-1', { result: 'changed', finishedAt: T + 5, summary: { changed: 2, ok: 7, line: '2 changed' }, details: [{ state: 'ntp', diff: ['+a', '-b'] }] });
  await store.createRun({ id: 'run-2', node: 'n002', kind: 'readiness', result: 'running', startedAt: T + 1, summary: { started: true }, details: { checks: [] } });
  await store.createRun({ id: 'run-3', node: 'late01', kind: 'install', result: 'failed', startedAt: T + 2, finishedAt: T + 3, summary: { error: 'x' }, details: 'plain text' });
}

interface Snapshot {
  nodes: unknown;
  events: unknown;
  leases: unknown;
  runs: unknown;
  onceKeys: unknown;
}

async function snapshot(store: ObservedStore, onceKeys: unknown): Promise<Snapshot> {
  return { nodes: await store.listNodes(), events: await store.listEvents(), leases: await store.listLeases(), runs: await store.listRuns(), onceKeys };
}

function sqliteOnceKeys(): unknown {
  const db = new Database(sqlitePath, { readonly: true });
  try {
    return db.prepare('SELECT key, used_at, expires_at FROM once_keys ORDER BY key').all();
  } finally {
    db.close();
  }
}

async function pgQuery<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, types: { getTypeParser: ((oid: number, f?: 'text' | 'binary') => (oid === 20 ? Number : pg.types.getTypeParser(oid, f))) as typeof pg.types.getTypeParser } });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/**
 * The source's runs as the copy must hold them: a run the stopped server recorded as running (run-2) arrives closed,
 * as that server would have closed it at its next start (the PostgreSQL server's default name differs, so it would
 * otherwise read running for ever).
 */
function copiedRuns(): Array<{ id: string; result: string }> {
  return (source.runs as Array<{ id: string; result: string; summary: object }>).map((run) =>
    run.result === 'running' ? { ...run, result: 'failed', finishedAt: expect.any(Number), summary: { ...run.summary, error: { code: 'RUN_ABANDONED', message: expect.stringContaining('copied to PostgreSQL') } } } : run,
  );
}

let source: Snapshot;
let lastSqliteSeq: number;

beforeAll(async () => {
  server = await startPostgres();
  dir = await mkdtemp(join(tmpdir(), 'rackseed-migrate-'));
  sqlitePath = join(dir, 'rackseed.db');
  const store = SqliteStore.open(sqlitePath);
  try {
    await populate(store);
    source = await snapshot(store, sqliteOnceKeys());
  } finally {
    await store.close();
  }
  // Events deleted at the end of the log leave AUTOINCREMENT's high-water mark above the last row: ids must continue
  // after the mark, never reuse it. The API never deletes events, so fake the mark.
  const db = new Database(sqlitePath);
  lastSqliteSeq = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'").get() as { seq: number }).seq + 50;
  db.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'events'").run(lastSqliteSeq);
  db.close();
});

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('rackseed store migrate --from sqlite:PATH --to postgres:URL', () => {
  it('copies everything losslessly, prints and verifies the counts', async () => {
    const url = await server.createDatabase('target');
    const r = await rackseed('store', 'migrate', '--from', `sqlite:${sqlitePath}`, '--to', `postgres:${url}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);

    const counts = { nodes: 31, events: (source.events as unknown[]).length, leases: (source.leases as unknown[]).length, runs: 3 };
    expect(counts.events).toBeGreaterThan(120);
    expect(r.stdout).toMatch(new RegExp(`^nodes\\s+${counts.nodes}$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^events\\s+${counts.events}$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^leases\\s+${counts.leases}$`, 'm'));
    expect(r.stdout).toMatch(/^once-keys\s+2$/m);
    expect(r.stdout).toMatch(/^runs\s+3$/m);
    expect(r.stdout).toMatch(/^runs closed\s+1 \(recorded as running/m);
    expect(r.stdout).toMatch(/^verified\s+row counts equal/m);

    const target = await PostgresStore.open({ url });
    try {
      const copied = await snapshot(target, await pgQuery(url, 'SELECT key, used_at, expires_at FROM once_keys ORDER BY key'));
      // Row by row, field by field: ids, order, timestamps, JSON payloads, optional fields present or absent.
      expect(copied.nodes).toEqual(source.nodes);
      expect(copied.events).toEqual(source.events);
      expect(copied.leases).toEqual(source.leases);
      const runs = copiedRuns();
      expect(runs.filter((run) => run.result === 'failed').map((run) => run.id).sort()).toEqual(['run-2', 'run-3']);
      expect(copied.runs).toEqual(runs);
      expect(copied.onceKeys).toEqual(source.onceKeys);
      for (const run of runs) expect(await target.getRun(run.id)).toEqual(run);

      // The copy behaves as the original did: single-use keys stay used, held addresses stay held...
      expect(await target.useOnce('plan:n001:abc', T + 600_000, T + 1)).toBe(false);
      const held = await target.claimLease({ ip: '10.9.0.12', mac: '52:54:00:09:0f:0f', state: 'bound', expiresAt: T + 1_000 }, T + 3);
      expect(held).toMatchObject({ ok: false, heldBy: { mac: '52:54:00:09:00:02' } });
      // ...and the event log continues after the highest id SQLite ever handed out.
      const next = await target.recordEvent({ node: 'n002', event: { type: 'reimage_requested' } });
      expect(next.ok && next.event.id).toBe(lastSqliteSeq + 1);
    } finally {
      await target.close();
    }

    // The source is untouched: the copy opened it read-only.
    const again = SqliteStore.open(sqlitePath);
    try {
      expect(await snapshot(again, sqliteOnceKeys())).toEqual(source);
    } finally {
      await again.close();
    }
  });

  it('batches by size as well as by rows: rows larger than a batch go alone, every row arrives', async () => {
    const url = await server.createDatabase('small-batches');
    // 200 characters per batch: every run (with its details) is bigger than that, most events are not.
    const report = await copySqliteToPostgres({ sqlitePath, postgresUrl: url, maxBatchBytes: 200 });
    expect(report.target).toEqual(report.source);
    const target = await PostgresStore.open({ url });
    try {
      const copied = await snapshot(target, await pgQuery(url, 'SELECT key, used_at, expires_at FROM once_keys ORDER BY key'));
      expect(copied.events).toEqual(source.events);
      expect(copied.runs).toEqual(copiedRuns());
    } finally {
      await target.close();
    }
  });

  it('refuses a non-empty target without --force and leaves it as it was; --force replaces it', async () => {
    const url = await server.createDatabase('busy');
    const busy = await PostgresStore.open({ url });
    await busy.recordEvent({ node: 'other', event: { type: 'discovered', mac: '52:54:00:0a:00:01', facts: {} } });
    await busy.close();

    const refused = await rackseed('store', 'migrate', '--from', `sqlite:${sqlitePath}`, '--to', url);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^rackseed: postgres:\/\/.* is not empty \(1 nodes, 1 events, 0 leases, 0 once-keys, 0 runs\); pass --force/);
    expect(await pgQuery(url, 'SELECT id FROM node_status')).toEqual([{ id: 'other' }]);

    const forced = await rackseed('--json', 'store', 'migrate', '--from', `sqlite:${sqlitePath}`, '--to', `postgres:${url}`, '--force');
    expect(forced.code).toBe(0);
    const report = JSON.parse(forced.stdout) as { source: Record<string, number>; target: Record<string, number>; replaced: Record<string, number> };
    expect(report.replaced).toEqual({ nodes: 1, events: 1, leases: 0, onceKeys: 0, runs: 0 });
    expect(report.target).toEqual(report.source);
    expect(report.target).toMatchObject({ nodes: 31, onceKeys: 2, runs: 3 });
    const target = await PostgresStore.open({ url });
    try {
      expect(await target.getNode('other')).toBeUndefined();
      expect(await target.listEvents()).toEqual(source.events);
    } finally {
      await target.close();
    }
  });

  it('reads the URL from RACKSEED_DATABASE_URL for "postgres:", and never prints the password', async () => {
    const url = await server.createDatabase('from_env');
    const withPassword = url.replace('postgres@', 'postgres:hunter2@');
    const r = await promisify(execFile)(process.execPath, ['--import', TSX_IMPORT, CLI, 'store', 'migrate', '--from', `sqlite:${sqlitePath}`, '--to', 'postgres:'], {
      env: { ...process.env, RACKSEED_CONFIG: '/nonexistent.yaml', RACKSEED_DATABASE_URL: withPassword },
    });
    expect(r.stdout).toMatch(/^to\s+postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/from_env$/m);
    expect(r.stdout + r.stderr).not.toContain('hunter2');
    expect((await pgQuery<{ n: number }>(url, 'SELECT count(*)::int AS n FROM runs'))[0]!.n).toBe(3);
  });

  it('names what is wrong with its arguments', async () => {
    const bad = await rackseed('store', 'migrate', '--from', sqlitePath, '--to', 'postgres:');
    // A malformed option is a usage error (exit 2); a well-formed one naming a store that cannot be opened is a failure (1).
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--from: expected sqlite:PATH/);
    const noUrl = await rackseed('store', 'migrate', '--from', `sqlite:${sqlitePath}`, '--to', 'postgres:');
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toMatch(/--to: no URL after "postgres:" and RACKSEED_DATABASE_URL is not set/);
    const missing = await rackseed('store', 'migrate', '--from', `sqlite:${join(dir, 'nope.db')}`, '--to', server.url('postgres'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot open SQLite store .*nope\.db/);
  });
});
