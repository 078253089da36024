import Database from 'better-sqlite3';
import type pg from 'pg';

import { RackseedError } from '../model/errors.js';
import { MIGRATIONS } from './migrations/index.js';
import { EVENT_LOG_LOCK, LEASES_LOCK, LOCK_NAMESPACE, migratePostgres } from './postgres-migrate.js';
import { INSERT_EVENTS, UPSERT_STATUSES } from './postgres-nodes.js';
import { createPool, inTransaction, redactUrl } from './postgres-open.js';
import { storedJson } from './stored-json.js';

/** Rows per table, as copied. */
export interface StoreCounts {
  nodes: number;
  events: number;
  leases: number;
  onceKeys: number;
  runs: number;
}

export interface CopyOptions {
  sqlitePath: string;
  postgresUrl: string;
  /** Replace whatever the target holds; without it a non-empty target is refused. */
  force?: boolean;
  /** Rows per INSERT. */
  chunk?: number;
  /** JSON characters per INSERT, at most (a larger row goes alone); 16 Mi by default. */
  maxBatchBytes?: number;
}

export interface CopyReport {
  source: StoreCounts;
  target: StoreCounts;
  /** What the target held before (replaced only with force). */
  replaced: StoreCounts;
  /** Runs the source recorded as running, copied as failed with RUN_ABANDONED (see ABANDONED_BY_COPY). */
  closedRuns: number;
}

type Row = Record<string, unknown>;

/**
 * One table's journey: the SQLite query (in primary key order, so events keep their order), how a row changes on the
 * way (SQLite stores JSON as text and booleans as 0/1), and the PostgreSQL statement taking a JSON array of rows.
 */
interface TableCopy {
  key: keyof StoreCounts;
  sqliteTable: string;
  pgTable: string;
  select: string;
  convert: (r: Row, copy: CopyContext) => Row;
  insert: string;
}

interface CopyContext {
  startedAt: number;
  closedRuns: number;
}

const json = (text: unknown): unknown => JSON.parse(String(text));

/**
 * The copy is made from a stopped server (docs/scale-out.md), so a run it recorded as running will never record its
 * end. A starting server closes such runs only when they carry its own name, and the PostgreSQL default name (the
 * host name) is not SQLite's ("rackseed"): copied as they are, they would read "running" for ever. They are closed
 * here, as the server would have closed them at its next start.
 */
const ABANDONED_BY_COPY = { code: 'RUN_ABANDONED', message: 'recorded as running when the store was copied to PostgreSQL; the server that ran it had stopped' };

function copiedRun(r: Row, copy: CopyContext): Row {
  const row = { ...r, summary: json(r.summary), details: json(r.details) };
  if (r.result !== 'running') return row;
  copy.closedRuns += 1;
  return { ...row, result: 'failed', finished_at: copy.startedAt, summary: { ...(row.summary as object), error: ABANDONED_BY_COPY } };
}

const TABLES: readonly TableCopy[] = [
  {
    key: 'nodes',
    sqliteTable: 'node_status',
    pgTable: 'node_status',
    select: 'SELECT * FROM node_status ORDER BY id',
    convert: (r) => ({ ...r, reimage_requested: r.reimage_requested === 1, facts: json(r.facts) }),
    // The store's own statement (the target is empty or cleared first, so its ON CONFLICT never applies).
    insert: UPSERT_STATUSES,
  },
  {
    key: 'events',
    sqliteTable: 'events',
    pgTable: 'events',
    select: 'SELECT * FROM events ORDER BY id',
    convert: (r) => ({ ...r, payload: json(r.payload) }),
    insert: INSERT_EVENTS,
  },
  {
    key: 'leases',
    sqliteTable: 'leases',
    pgTable: 'leases',
    select: 'SELECT * FROM leases ORDER BY ip',
    convert: (r) => r,
    insert: `
      INSERT INTO leases (ip, mac, state, expires_at, hostname, client_id, server, updated_at)
      SELECT ip, mac, state, expires_at, hostname, client_id, server, updated_at
      FROM jsonb_to_recordset($1::jsonb) AS x(ip text, mac text, state text, expires_at bigint, hostname text,
        client_id text, server text, updated_at bigint)`,
  },
  {
    key: 'onceKeys',
    sqliteTable: 'once_keys',
    pgTable: 'once_keys',
    select: 'SELECT * FROM once_keys ORDER BY key',
    convert: (r) => r,
    insert: `
      INSERT INTO once_keys (key, used_at, expires_at)
      SELECT key, used_at, expires_at FROM jsonb_to_recordset($1::jsonb) AS x(key text, used_at bigint, expires_at bigint)`,
  },
  {
    key: 'runs',
    sqliteTable: 'runs',
    pgTable: 'runs',
    select: 'SELECT * FROM runs ORDER BY id',
    convert: copiedRun,
    insert: `
      INSERT INTO runs (id, node, kind, result, started_at, finished_at, summary, details)
      SELECT id, node, kind, result, started_at, finished_at, summary, details
      FROM jsonb_to_recordset($1::jsonb) AS x(id text, node text, kind text, result text, started_at bigint,
        finished_at bigint, summary jsonb, details jsonb)`,
  },
];

const emptyCounts = (): StoreCounts => ({ nodes: 0, events: 0, leases: 0, onceKeys: 0, runs: 0 });

function total(c: StoreCounts): number {
  return c.nodes + c.events + c.leases + c.onceKeys + c.runs;
}

export function describeCounts(c: StoreCounts): string {
  return `${c.nodes} nodes, ${c.events} events, ${c.leases} leases, ${c.onceKeys} once-keys, ${c.runs} runs`;
}

/** Opens the source read-only: copying must never change the installation being moved. */
function openSource(path: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw new RackseedError('STORE_UNAVAILABLE', `cannot open SQLite store ${path}: ${(e as Error).message}`, { path }, { cause: e });
  }
  const hasTable = (name: string): boolean => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  if (!hasTable('schema_migrations')) {
    db.close();
    throw new RackseedError('STORE_MIGRATION', `${path} is not a rackseed store (no schema_migrations table)`, { path });
  }
  const version = (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
  const latest = MIGRATIONS.at(-1)!.version;
  if (version !== latest) {
    db.close();
    throw new RackseedError(
      'STORE_MIGRATION',
      `${path} has schema version ${version}, this rackseed copies version ${latest}: ` +
        (version < latest ? 'start this rackseed on it once (it upgrades the file), then copy' : 'it was written by a newer rackseed'),
      { path, version, latest },
    );
  }
  return db;
}

async function countTarget(client: pg.ClientBase): Promise<StoreCounts> {
  const counts = emptyCounts();
  for (const t of TABLES) {
    const r = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t.pgTable}`);
    counts[t.key] = r.rows[0]!.n;
  }
  return counts;
}

/**
 * Rows (each one JSON text) grouped into JSON arrays of at most `maxRows` rows and `maxChars` characters; a row larger
 * than `maxChars` is an array of its own. Pure.
 */
export function* jsonBatches(rows: Iterable<string>, maxRows: number, maxChars: number): Generator<string> {
  let batch: string[] = [];
  let chars = 0;
  for (const row of rows) {
    if (batch.length > 0 && (batch.length >= maxRows || chars + row.length + 1 > maxChars)) {
      yield `[${batch.join(',')}]`;
      batch = [];
      chars = 0;
    }
    batch.push(row);
    chars += row.length + 1;
  }
  if (batch.length > 0) yield `[${batch.join(',')}]`;
}

/**
 * Copies a single server's SQLite store into a PostgreSQL database: every node status, event (same ids, same order,
 * and the id sequence continues after them), lease, single-use key and run. The target is written in ONE transaction
 * that verifies its row counts before committing, so a failed or interrupted copy leaves it as it was. The source is
 * read in one read transaction (a consistent snapshot); stop the server first, or what it writes afterwards is not
 * copied.
 */
export async function copySqliteToPostgres(o: CopyOptions): Promise<CopyReport> {
  const chunk = o.chunk ?? 1000;
  const maxBatchBytes = o.maxBatchBytes ?? 16 * 1024 * 1024;
  const source = openSource(o.sqlitePath);
  const pool = createPool({ url: o.postgresUrl, poolSize: 1 });
  try {
    try {
      await migratePostgres(pool, o.postgresUrl);
    } catch (e) {
      throw e instanceof RackseedError ? e : new RackseedError('STORE_UNAVAILABLE', `cannot use PostgreSQL at ${redactUrl(o.postgresUrl)}: ${(e as Error).message}`, {}, { cause: e });
    }
    const sourceCounts = emptyCounts();
    let replaced = emptyCounts();
    const copy: CopyContext = { startedAt: Date.now(), closedRuns: 0 };
    source.exec('BEGIN');
    try {
      await inTransaction(pool, async (client) => {
        // A server already running on the target would interleave its writes with the copy: make it wait instead.
        await client.query('SELECT pg_advisory_xact_lock($1, $2), pg_advisory_xact_lock($1, $3)', [LOCK_NAMESPACE, EVENT_LOG_LOCK, LEASES_LOCK]);
        replaced = await countTarget(client);
        if (total(replaced) > 0) {
          if (!o.force) {
            throw new RackseedError('STORE_CONFLICT', `${redactUrl(o.postgresUrl)} is not empty (${describeCounts(replaced)}); pass --force to replace its content`, { ...replaced });
          }
          await client.query('TRUNCATE node_status, events, leases, once_keys, runs RESTART IDENTITY');
        }
        for (const t of TABLES) {
          sourceCounts[t.key] = 0;
          // Each batch is one jsonb parameter, which PostgreSQL caps at 256 MiB: a batch ends at `chunk` rows or at
          // `maxBatchBytes` of JSON, whichever comes first (runs with large diffs made 1,000 rows too big, and the
          // copy held GBs). A row larger than that goes alone.
          const rows = function* (): Generator<string> {
            for (const row of source.prepare(t.select).iterate() as IterableIterator<Row>) {
              sourceCounts[t.key] += 1;
              yield storedJson(t.convert(row, copy));
            }
          };
          for (const batch of jsonBatches(rows(), chunk, maxBatchBytes)) {
            try {
              await client.query(t.insert, [batch]);
            } catch (e) {
              throw new RackseedError('STORE_MIGRATION', `copying ${t.sqliteTable} failed: ${(e as Error).message}`, { table: t.sqliteTable }, { cause: e });
            }
          }
        }
        // Continue after the highest id SQLite ever handed out (AUTOINCREMENT remembers it even if that row is gone),
        // so a consumer resuming with afterId never sees an id reused.
        const seq = source.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'").get() as { seq: number } | undefined;
        const maxId = (await client.query<{ m: number | null }>('SELECT max(id) AS m FROM events')).rows[0]!.m ?? 0;
        const last = Math.max(seq?.seq ?? 0, maxId);
        await client.query("SELECT setval(pg_get_serial_sequence('events', 'id'), $1, $2)", [Math.max(last, 1), last > 0]);

        const copied = await countTarget(client);
        const mismatch = TABLES.filter((t) => copied[t.key] !== sourceCounts[t.key]);
        if (mismatch.length > 0) {
          throw new RackseedError('STORE_MIGRATION', `copy verification failed (source: ${describeCounts(sourceCounts)}; target: ${describeCounts(copied)}); nothing was committed`, {
            source: sourceCounts,
            target: copied,
          });
        }
      });
    } finally {
      source.exec('COMMIT');
    }
    // Counted again after the commit, on a fresh connection: this is what the target now holds.
    const client = await pool.connect();
    try {
      return { source: sourceCounts, target: await countTarget(client), replaced, closedRuns: copy.closedRuns };
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
    source.close();
  }
}
