import type Database from 'better-sqlite3';

import type { ClaimResult, Lease } from './types.js';
import { toLease, type LeaseRow } from './lease-row.js';

/**
 * Whether `mac` may take an address whose current lease is `held`. A declined address is quarantined for every
 * MAC, the decliner included: DHCPDECLINE means some other device answers on it, so handing it back to the same
 * client would only repeat the conflict.
 */
export function claimable(held: Lease | undefined, mac: string, now: number): boolean {
  if (!held || held.state === 'released' || held.expiresAt <= now) return true;
  if (held.state === 'declined') return false;
  return held.mac === mac;
}

/** DHCP leases. Every read-then-write runs in an IMMEDIATE transaction: several DHCP workers may race for one IP. */
export class SqliteLeases {
  private readonly byIpStmt;
  private readonly byMacStmt;
  private readonly listStmt;
  private readonly upsertStmt;
  private readonly releaseOthersStmt;
  private readonly releaseStmt;
  private readonly claimTx;
  private readonly claimManyTx;
  private readonly declineTx;

  constructor(db: Database.Database) {
    this.byIpStmt = db.prepare<[string], LeaseRow>('SELECT * FROM leases WHERE ip = ?');
    // The address the MAC holds now, else the one it had most recently (a returning client gets its old IP back).
    this.byMacStmt = db.prepare<[string], LeaseRow>(`
      SELECT * FROM leases WHERE mac = ?
      ORDER BY state IN ('offered', 'bound') DESC, updated_at DESC, ip
      LIMIT 1`);
    this.listStmt = db.prepare<[], LeaseRow>('SELECT * FROM leases ORDER BY ip');
    this.upsertStmt = db.prepare(`
      INSERT INTO leases (ip, mac, state, expires_at, hostname, client_id, server, updated_at)
      VALUES (@ip, @mac, @state, @expires_at, @hostname, @client_id, @server, @updated_at)
      ON CONFLICT (ip) DO UPDATE SET
        mac = excluded.mac, state = excluded.state, expires_at = excluded.expires_at, hostname = excluded.hostname,
        client_id = excluded.client_id, server = excluded.server, updated_at = excluded.updated_at`);
    // Declined leases stay as they are: releasing them would end a quarantine early.
    this.releaseOthersStmt = db.prepare<[number, string, string]>(`
      UPDATE leases SET state = 'released', updated_at = ?
      WHERE mac = ? AND ip <> ? AND state IN ('offered', 'bound')`);
    this.releaseStmt = db.prepare<[number, string, string]>(`
      UPDATE leases SET state = 'released', updated_at = ?
      WHERE ip = ? AND mac = ? AND state IN ('offered', 'bound')`);

    const claimOne = (lease: Omit<Lease, 'updatedAt'>, now: number): ClaimResult => {
      const held = this.byIp(lease.ip);
      if (held && !claimable(held, lease.mac, now)) return { ok: false, heldBy: held };
      this.releaseOthersStmt.run(now, lease.mac, lease.ip);
      const next: Lease = { ...lease, updatedAt: now };
      this.write(next);
      return { ok: true, lease: next };
    };
    this.claimTx = db.transaction(claimOne);
    // Group commit: one fsync for a whole burst of DHCP ACKs instead of one per lease.
    this.claimManyTx = db.transaction((leases: ReadonlyArray<Omit<Lease, 'updatedAt'>>, now: number) => leases.map((l) => claimOne(l, now)));
    this.declineTx = db.transaction((ip: string, mac: string, until: number, now: number) => {
      const held = this.byIp(ip);
      // Only the holder of a live row (or anyone, if nobody holds it) can quarantine it; otherwise one confused client
      // could take a live lease away from its owner. Offers live only in the DHCP server's memory and a reservation
      // has no row until bound: FullModeHandler turns away a DECLINE of those before it gets here.
      const liveForOther = held && held.mac !== mac && (held.state === 'offered' || held.state === 'bound') && held.expiresAt > now;
      if (liveForOther) return;
      // A second DHCPDECLINE never shortens a quarantine already running.
      if (held?.state === 'declined' && held.expiresAt > until) until = held.expiresAt;
      this.write({ ip, mac, state: 'declined', expiresAt: until, updatedAt: now });
    });
  }

  private write(l: Lease): void {
    this.upsertStmt.run({
      ip: l.ip,
      mac: l.mac,
      state: l.state,
      expires_at: l.expiresAt,
      hostname: l.hostname ?? null,
      client_id: l.clientId ?? null,
      server: l.server ?? null,
      updated_at: l.updatedAt,
    });
  }

  byIp(ip: string): Lease | undefined {
    const row = this.byIpStmt.get(ip);
    return row ? toLease(row) : undefined;
  }

  byMac(mac: string): Lease | undefined {
    const row = this.byMacStmt.get(mac);
    return row ? toLease(row) : undefined;
  }

  list(): Lease[] {
    return this.listStmt.all().map(toLease);
  }

  claim(lease: Omit<Lease, 'updatedAt'>, now: number): ClaimResult {
    return this.claimTx.immediate(lease, now);
  }

  claimMany(leases: ReadonlyArray<Omit<Lease, 'updatedAt'>>, now: number): ClaimResult[] {
    return this.claimManyTx.immediate(leases, now);
  }

  release(ip: string, mac: string, now: number): boolean {
    return this.releaseStmt.run(now, ip, mac).changes > 0;
  }

  decline(ip: string, mac: string, until: number, now: number): void {
    this.declineTx.immediate(ip, mac, until, now);
  }
}
