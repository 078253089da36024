import pg from 'pg';

import { RackseedError } from '../model/errors.js';

export interface PostgresOptions {
  /** postgres://user:password@host:port/database (libpq-style query parameters such as sslmode work too). */
  url: string;
  /** Connections this server keeps at most; each DHCP batch, event batch or API read takes one for its duration. */
  poolSize?: number;
  /** How long opening a connection may take (DEFAULT_CONNECT_TIMEOUT_MS); tests shorten it. */
  connectTimeoutMs?: number;
  /** How long one query may take (DEFAULT_QUERY_TIMEOUT_MS); tests shorten it. */
  queryTimeoutMs?: number;
}

export const DEFAULT_POOL_SIZE = 10;
/**
 * Without limits a database behind a network partition (packets dropped, not refused) makes every store call wait
 * forever: DHCP acknowledgements, torrent requests, the API. With them such a call fails, and callers already handle
 * a store that fails. The query limit leaves room for a migration waiting on another server's migration lock.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_QUERY_TIMEOUT_MS = 60_000;

const INT8_OID = 20;

/**
 * bigint columns hold milliseconds and event ids, all far below 2^53: numbers, not the strings pg returns by
 * default. Per pool rather than pg.types.setTypeParser, which would change every pg user in the process.
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

export function createPool(o: PostgresOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: o.url,
    max: o.poolSize ?? DEFAULT_POOL_SIZE,
    types,
    application_name: 'rackseed',
    connectionTimeoutMillis: o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    query_timeout: o.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
    // Detects a peer that vanished (a half-open connection) instead of waiting on it for good.
    keepAlive: true,
    // Durability is part of the store contract: a database configured with synchronous_commit = off could lose
    // acknowledged leases and events after a crash, so each connection asks for it. pg-pool awaits this before it
    // hands the connection out, and a connection on which it fails is closed and its error goes to the caller (a
    // 'connect' listener ran it concurrently with the first query and dropped its error). Not the `options` startup
    // parameter: one in the URL would replace it. (@types/pg types the hook as returning void.)
    onConnect: (async (client: pg.ClientBase) => {
      await client.query('SET synchronous_commit = on');
    }) as unknown as (client: pg.ClientBase) => void,
  });
  // An idle connection that the server drops (restart, failover) emits 'error' on the pool; unhandled, that would
  // crash the process. The pool discards the connection, and the next query opens a new one or reports the outage.
  pool.on('error', () => {});
  return pool;
}

/** SQLSTATEs after which re-running the whole transaction is the right answer. */
const SERIALIZATION_FAILURE = '40001';
const DEADLOCK_DETECTED = '40P01';
export const UNIQUE_VIOLATION = '23505';

export function sqlState(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export interface TransactionOptions {
  /**
   * Also retry on a unique violation: for transactions whose constraint can only be violated by a concurrent
   * transaction that committed first (a lease race), where re-running sees that commit and decides again.
   */
  retryUniqueViolation?: boolean;
}

const MAX_ATTEMPTS = 20;

/**
 * Runs `body` in one transaction on one pooled connection. Deadlocks (two servers locking the same rows in different
 * orders) and, when asked, unique violations roll back and re-run the whole body, so `body` must derive everything
 * from what it reads inside the transaction.
 */
export async function inTransaction<T>(pool: pg.Pool, body: (client: pg.PoolClient) => Promise<T>, o: TransactionOptions = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await body(client);
      await client.query('COMMIT');
      return result;
    } catch (e) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        // The connection itself failed: do not hand it back to the pool.
        broken = rollbackError as Error;
      }
      const state = sqlState(e);
      const retryable = state === SERIALIZATION_FAILURE || state === DEADLOCK_DETECTED || (o.retryUniqueViolation === true && state === UNIQUE_VIOLATION);
      if (!retryable || attempt >= MAX_ATTEMPTS) throw e;
    } finally {
      client.release(broken);
    }
    // Jitter, so two servers that collided do not collide again in lockstep.
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 * attempt)));
  }
}

/** Wraps a connection failure with the (redacted) URL, so the operator sees which database could not be reached. */
export function connectionError(url: string, e: unknown): RackseedError {
  return new RackseedError('STORE_UNAVAILABLE', `cannot use PostgreSQL at ${redactUrl(url)}: ${(e as Error).message}`, { url: redactUrl(url) }, { cause: e });
}
