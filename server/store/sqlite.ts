import type Database from 'better-sqlite3';

import type { Facts } from '../model/lifecycle.js';
import { migrateSqlite } from './sqlite-migrate.js';
import { SqliteLeases } from './sqlite-leases.js';
import { SqliteNodes } from './sqlite-nodes.js';
import { openSqliteDatabase, readSettings, type SqliteSettings } from './sqlite-open.js';
import { pruneInBatches } from './prune.js';
import { SqliteRuns } from './sqlite-runs.js';
import { SqliteServers } from './sqlite-servers.js';
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

/**
 * ObservedStore on one SQLite file. better-sqlite3 is synchronous; the methods are async only to share the
 * interface with the PostgreSQL store. Each write has committed (and, with synchronous = FULL, been fsynced)
 * before its promise resolves.
 */
export class SqliteStore implements ObservedStore {
  private readonly nodes: SqliteNodes;
  private readonly leases: SqliteLeases;
  private readonly runs: SqliteRuns;
  private readonly servers: SqliteServers;
  private readonly useOnceTx: (key: string, expiresAt: number, now: number) => boolean;

  /** Use openSqliteStore: the statements below need a migrated schema. */
  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
  ) {
    this.nodes = new SqliteNodes(db);
    this.leases = new SqliteLeases(db);
    this.runs = new SqliteRuns(db);
    this.servers = new SqliteServers(db);
    const prune = db.prepare<[number]>('DELETE FROM once_keys WHERE expires_at <= ?');
    const insert = db.prepare<[string, number, number]>('INSERT INTO once_keys (key, used_at, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING');
    const tx = db.transaction((key: string, expiresAt: number, now: number) => {
      prune.run(now);
      return insert.run(key, now, expiresAt).changes === 1;
    });
    this.useOnceTx = (key, expiresAt, now) => tx.immediate(key, expiresAt, now);
  }

  /** Opens (creating if needed) and migrates the database at `path`. */
  static open(path: string): SqliteStore {
    const db = openSqliteDatabase(path);
    try {
      migrateSqlite(db, path);
      return new SqliteStore(db, path);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** The pragmas in effect, for `rackseed doctor` and tests. */
  settings(): SqliteSettings {
    return readSettings(this.db);
  }

  async migrate(): Promise<void> {
    migrateSqlite(this.db, this.path);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async getNode(id: string): Promise<NodeStatus | undefined> {
    return this.nodes.get(id);
  }

  async listNodes(): Promise<NodeStatus[]> {
    return this.nodes.list();
  }

  async recordEvent(e: NewEvent): Promise<RecordResult> {
    return this.nodes.record(e);
  }

  async recordEvents(batch: readonly NewEvent[]): Promise<RecordResult[]> {
    return this.nodes.recordBatch(batch);
  }

  async listEvents(q?: EventQuery): Promise<StoredEvent[]> {
    return this.nodes.listEvents(q);
  }

  async touchNode(id: string, patch: { mac?: string; facts?: Facts; seenAt?: number }): Promise<void> {
    this.nodes.touch(id, patch);
  }

  async renameNode(fromId: string, toId: string): Promise<void> {
    this.nodes.rename(fromId, toId);
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
    return leases.length === 0 ? [] : this.leases.claimMany(leases, now);
  }

  async claimLease(lease: Omit<Lease, 'updatedAt'>, now: number = Date.now()): Promise<ClaimResult> {
    return this.leases.claim(lease, now);
  }

  async releaseLease(ip: string, mac: string): Promise<boolean> {
    return this.leases.release(ip, mac, Date.now());
  }

  async declineLease(ip: string, mac: string, until: number): Promise<void> {
    this.leases.decline(ip, mac, until, Date.now());
  }

  async useOnce(key: string, expiresAt: number, now: number = Date.now()): Promise<boolean> {
    return this.useOnceTx(key, expiresAt, now);
  }

  async registerServer(server: Omit<ServerRecord, 'lastSeenAt'>, now: number = Date.now()): Promise<void> {
    this.servers.register(server, now);
  }

  async listServers(maxAgeMs?: number, now: number = Date.now()): Promise<ServerRecord[]> {
    return this.servers.list(maxAgeMs === undefined ? Number.MIN_SAFE_INTEGER : now - maxAgeMs);
  }

  async removeServer(name: string): Promise<void> {
    this.servers.remove(name);
  }

  async createRun(run: Run): Promise<void> {
    this.runs.create(run);
  }

  async finishRun(
    id: string,
    patch: { result: RunResult; finishedAt: number; summary: Record<string, unknown>; details: unknown },
  ): Promise<void> {
    this.runs.finish(id, patch);
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
      runs: async (q) => this.runs.pruneBatch(q),
      discovered: async (before, limit) => this.nodes.forgetDiscovered(before, limit),
    });
  }
}
