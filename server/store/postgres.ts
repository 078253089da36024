import type pg from 'pg';

import { isRackseedError } from '../model/errors.js';
import type { Facts } from '../model/lifecycle.js';
import { PgLeases } from './postgres-leases.js';
import { migratePostgres } from './postgres-migrate.js';
import { PgNodes } from './postgres-nodes.js';
import { connectionError, createPool, DEFAULT_POOL_SIZE, type PostgresOptions } from './postgres-open.js';
import { PgRuns } from './postgres-runs.js';
import { pruneInBatches } from './prune.js';
import { PgServers } from './postgres-servers.js';
import type {
  ClaimResult,
  EventQuery,
  Lease,
  NewEvent,
  NodeStatus,
  ObservedStore,
  PrunePolicy,
  PruneResult,
  RecordResult,
  Run,
  RunQuery,
  RunResult,
  ServerRecord,
  StoredEvent,
} from './types.js';

export interface PostgresSettings {
  /** "on" for every connection of the pool (see createPool). */
  synchronousCommit: string;
  poolSize: number;
}

/**
 * ObservedStore on a PostgreSQL database that several rackseed servers may share. Every write is a committed
 * transaction with synchronous_commit on before its promise resolves. Races between servers are settled by the
 * database (row locks, an advisory lock on the event log, unique constraints on leases), never by a read in one
 * statement and a write in another.
 */
export class PostgresStore implements ObservedStore {
  private readonly nodes: PgNodes;
  private readonly leases: PgLeases;
  private readonly runs: PgRuns;
  private readonly servers: PgServers;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly options: PostgresOptions,
  ) {
    this.nodes = new PgNodes(pool);
    this.leases = new PgLeases(pool);
    this.runs = new PgRuns(pool);
    this.servers = new PgServers(pool);
  }

  /** Connects and migrates; fails with STORE_UNAVAILABLE (URL without its password) if the database cannot be used. */
  static async open(options: PostgresOptions): Promise<PostgresStore> {
    const pool = createPool(options);
    try {
      await migratePostgres(pool, options.url);
      return new PostgresStore(pool, options);
    } catch (e) {
      await pool.end().catch(() => {});
      throw isRackseedError(e) ? e : connectionError(options.url, e);
    }
  }

  /** What the connections actually run with, for `rackseed doctor` and tests. */
  async settings(): Promise<PostgresSettings> {
    const r = await this.pool.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
    return { synchronousCommit: r.rows[0]!.synchronous_commit, poolSize: this.options.poolSize ?? DEFAULT_POOL_SIZE };
  }

  async migrate(): Promise<void> {
    await migratePostgres(this.pool, this.options.url);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  async getNode(id: string): Promise<NodeStatus | undefined> {
    return this.nodes.get(id);
  }

  async listNodes(): Promise<NodeStatus[]> {
    return this.nodes.list();
  }

  async recordEvent(e: NewEvent): Promise<RecordResult> {
    return (await this.nodes.record([e]))[0]!;
  }

  async recordEvents(batch: readonly NewEvent[]): Promise<RecordResult[]> {
    return this.nodes.record(batch);
  }

  async listEvents(q?: EventQuery): Promise<StoredEvent[]> {
    return this.nodes.listEvents(q);
  }

  async touchNode(id: string, patch: { mac?: string; facts?: Facts; seenAt?: number }): Promise<void> {
    await this.nodes.touch(id, patch);
  }

  async renameNode(fromId: string, toId: string): Promise<void> {
    await this.nodes.rename(fromId, toId);
  }

  async getLeaseByIp(ip: string): Promise<Lease | undefined> {
    return this.leases.byIp(ip);
  }

  async getLeaseByMac(mac: string): Promise<Lease | undefined> {
    return this.leases.byMac(mac);
  }

  async listLeases(): Promise<Lease[]> {
    return this.leases.list();
  }

  async claimLeases(leases: ReadonlyArray<Omit<Lease, 'updatedAt'>>, now: number = Date.now()): Promise<ClaimResult[]> {
    return this.leases.claimMany(leases, now);
  }

  async claimLease(lease: Omit<Lease, 'updatedAt'>, now: number = Date.now()): Promise<ClaimResult> {
    return (await this.leases.claimMany([lease], now))[0]!;
  }

  async releaseLease(ip: string, mac: string): Promise<boolean> {
    return this.leases.release(ip, mac, Date.now());
  }

  async declineLease(ip: string, mac: string, until: number): Promise<void> {
    await this.leases.decline(ip, mac, until, Date.now());
  }

  /**
   * One statement decides: it inserts the key, or takes over an expired one, or does nothing (RETURNING no row). Two
   * servers racing for a key queue on its unique index, and the second sees the first's row.
   */
  async useOnce(key: string, expiresAt: number, now: number = Date.now()): Promise<boolean> {
    const r = await this.pool.query(
      `INSERT INTO once_keys (key, used_at, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (key) DO UPDATE SET used_at = excluded.used_at, expires_at = excluded.expires_at
       WHERE once_keys.expires_at <= $2
       RETURNING 1`,
      [key, now, expiresAt],
    );
    // Housekeeping only (correctness does not depend on it): expired keys would otherwise accumulate.
    await this.pool.query('DELETE FROM once_keys WHERE expires_at <= $1', [now]);
    return r.rowCount === 1;
  }

  // Without `now`, the database's clock (PgServers): servers sharing the store may disagree on the time.
  async registerServer(server: Omit<ServerRecord, 'lastSeenAt'>, now?: number): Promise<void> {
    await this.servers.register(server, now);
  }

  async listServers(maxAgeMs?: number, now?: number): Promise<ServerRecord[]> {
    return this.servers.list(maxAgeMs, now);
  }

  async removeServer(name: string): Promise<void> {
    await this.servers.remove(name);
  }

  async createRun(run: Run): Promise<void> {
    await this.runs.create(run);
  }

  async finishRun(id: string, patch: { result: RunResult; finishedAt: number; summary: Record<string, unknown>; details: unknown }): Promise<void> {
    await this.runs.finish(id, patch);
  }

  async getRun(id: string): Promise<Run | undefined> {
    return this.runs.get(id);
  }

  async listRuns(q?: RunQuery): Promise<Run[]> {
    return this.runs.list(q);
  }

  async abandonRuns(q: { server: string; before: number; finishedAt: number; error: { code: string; message: string } }): Promise<number> {
    return this.runs.abandon(q);
  }

  async prune(policy: PrunePolicy): Promise<PruneResult> {
    return pruneInBatches(policy, {
      runs: (q) => this.runs.pruneBatch(q),
      discovered: (before, limit) => this.nodes.forgetDiscovered(before, limit),
    });
  }
}
