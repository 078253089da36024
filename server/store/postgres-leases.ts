import type pg from 'pg';

import { claimable } from './sqlite-leases.js';
import { LEASES_LOCK, LOCK_NAMESPACE } from './postgres-migrate.js';
import { inTransaction } from './postgres-open.js';
import type { ClaimResult, Lease } from './types.js';
import { toLease, type LeaseRow } from './lease-row.js';

/**
 * Locks the address's row, creating it first if there is none, and returns what it held before. The row always exists
 * and is locked before anything is decided, so two servers claiming the same address queue on that row instead of
 * both deciding it is free. A row created here is a released placeholder owned by this transaction (invisible to
 * others until commit), which the claim then overwrites: it never survives a refused claim, because a freshly
 * created row is always claimable.
 */
const LOCK_ADDRESS = `
  INSERT INTO leases (ip, mac, state, expires_at, updated_at) VALUES ($1, $2, 'released', 0, $3)
  ON CONFLICT (ip) DO UPDATE SET ip = leases.ip
  RETURNING *`;

const RELEASE_OTHERS = `
  UPDATE leases SET state = 'released', updated_at = $1
  WHERE mac = $2 AND ip <> $3 AND state IN ('offered', 'bound')`;

const WRITE = `
  UPDATE leases SET mac = $2, state = $3, expires_at = $4, hostname = $5, client_id = $6, server = $7, updated_at = $8
  WHERE ip = $1`;

/**
 * Lease writers queue here, one transaction at a time across all servers. Row locks and the constraints alone are
 * enough for correctness, but two batches locking addresses (and the MACs' other leases) in different orders
 * deadlock, and every deadlock costs deadlock_timeout (1 s by default) before PostgreSQL breaks it: measured, three
 * servers racing for one pool spent most of their time waiting on deadlocks. A batch is one transaction of a few
 * milliseconds, so taking turns costs less than that.
 */
async function lockLeases(client: pg.ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, LEASES_LOCK]);
}

async function write(client: pg.ClientBase, l: Lease): Promise<void> {
  await client.query(WRITE, [l.ip, l.mac, l.state, l.expiresAt, l.hostname ?? null, l.clientId ?? null, l.server ?? null, l.updatedAt]);
}

/** A placeholder this transaction just created stands for "no lease". */
function heldBefore(row: LeaseRow): Lease | undefined {
  return row.state === 'released' && row.expires_at === 0 ? undefined : toLease(row);
}

async function claimOne(client: pg.ClientBase, lease: Omit<Lease, 'updatedAt'>, now: number): Promise<ClaimResult> {
  const row = (await client.query<LeaseRow>(LOCK_ADDRESS, [lease.ip, lease.mac, now])).rows[0]!;
  const held = heldBefore(row);
  if (held && !claimable(held, lease.mac, now)) return { ok: false, heldBy: held };
  // Before the write: the unique index on a MAC's active lease would reject the claim while the old one is active.
  await client.query(RELEASE_OTHERS, [now, lease.mac, lease.ip]);
  const next: Lease = { ...lease, updatedAt: now };
  await write(client, next);
  return { ok: true, lease: next };
}

/**
 * DHCP leases. An address is one row (primary key) and a MAC has at most one offered/bound row (a partial unique
 * index), so whatever the interleaving, the database refuses a double assignment; claims also lock the address row
 * before deciding, and writers take turns (lockLeases). Should a unique violation still happen (a writer that does
 * not take the lock: an older rackseed, a manual fix-up), the transaction is re-run and decides again on what that
 * writer committed.
 */
export class PgLeases {
  constructor(private readonly pool: pg.Pool) {}

  async byIp(ip: string): Promise<Lease | undefined> {
    const r = await this.pool.query<LeaseRow>('SELECT * FROM leases WHERE ip = $1', [ip]);
    return r.rows[0] && toLease(r.rows[0]);
  }

  async byMac(mac: string): Promise<Lease | undefined> {
    // The address the MAC holds now, else the one it had most recently (a returning client gets its old IP back).
    const r = await this.pool.query<LeaseRow>(
      `SELECT * FROM leases WHERE mac = $1
       ORDER BY state IN ('offered', 'bound') DESC, updated_at DESC, ip
       LIMIT 1`,
      [mac],
    );
    return r.rows[0] && toLease(r.rows[0]);
  }

  async list(): Promise<Lease[]> {
    return (await this.pool.query<LeaseRow>('SELECT * FROM leases ORDER BY ip')).rows.map(toLease);
  }

  /** In order, in one transaction (one commit for a burst of DHCP ACKs); a later claim sees the earlier ones. */
  async claimMany(leases: ReadonlyArray<Omit<Lease, 'updatedAt'>>, now: number): Promise<ClaimResult[]> {
    if (leases.length === 0) return [];
    return inTransaction(
      this.pool,
      async (client) => {
        await lockLeases(client);
        const results: ClaimResult[] = [];
        for (const l of leases) results.push(await claimOne(client, l, now));
        return results;
      },
      { retryUniqueViolation: true },
    );
  }

  async release(ip: string, mac: string, now: number): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE leases SET state = 'released', updated_at = $1
       WHERE ip = $2 AND mac = $3 AND state IN ('offered', 'bound')`,
      [now, ip, mac],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async decline(ip: string, mac: string, until: number, now: number): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await lockLeases(client);
      const held = heldBefore((await client.query<LeaseRow>(LOCK_ADDRESS, [ip, mac, now])).rows[0]!);
      // Same rules as SqliteLeases.decline: only the holder (or anyone, if nobody holds it) can quarantine it, and a
      // second DHCPDECLINE never shortens a quarantine already running.
      const liveForOther = held && held.mac !== mac && (held.state === 'offered' || held.state === 'bound') && held.expiresAt > now;
      if (liveForOther) return;
      if (held?.state === 'declined' && held.expiresAt > until) until = held.expiresAt;
      await write(client, { ip, mac, state: 'declined', expiresAt: until, updatedAt: now });
    });
  }
}
