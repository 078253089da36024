import { formatIpv4, parseIpv4 } from '../model/ipv4.js';
import type { Holder, LeaseView, PoolRange } from '../protocol/dhcp/lease-decision.js';
import type { ClaimResult, Lease, ObservedStore } from '../store/types.js';

/** The fewest milliseconds between two reloads from a shared store (a reload reads every lease). */
const REFRESH_MS = 2_000;

interface PendingClaim {
  lease: Omit<Lease, 'updatedAt'>;
  resolve: (r: ClaimResult) => void;
  reject: (e: unknown) => void;
}

/**
 * The DHCP server's view of who holds which address: bound leases and quarantines mirrored from the store,
 * plus offers, which live only here (an offer is a promise for a few seconds, not state worth an fsync).
 *
 * Binding goes through the store, which is the arbiter (several servers may share it): claims made while the
 * event loop handles one burst of packets are committed together in ONE transaction, and each ACK is sent only
 * after that commit returned. That is group commit: durable before acknowledged, at one fsync per burst.
 *
 * With a store shared by several servers (`shared`), this view also misses what the others bind. Nothing here trusts
 * it for correctness: a claim the store refuses comes back with the lease that holds the address, which replaces our
 * entry (so the next DISCOVER is offered another address), and the REQUEST is NAKed. When the view says there is
 * nothing left to offer, refresh() re-reads the store, at most every REFRESH_MS, since the others may have released
 * what we last saw them hold. A single server never reloads: its view is complete.
 */
export class LeaseBook implements LeaseView {
  private readonly byIp = new Map<number, Lease>();
  private readonly lastByMac = new Map<string, number>();
  private reserved = new Map<number, string>();
  private readonly cursor = new Map<string, number>();
  private pending: PendingClaim[] = [];
  private flushScheduled = false;

  constructor(
    private readonly store: ObservedStore,
    private readonly serverName: string,
    private readonly now: () => number = Date.now,
    private readonly shared = false,
  ) {}

  private refreshedAt = Number.NEGATIVE_INFINITY;

  async load(): Promise<void> {
    for (const lease of await this.store.listLeases()) this.remember(lease);
  }

  /**
   * Merges the store's leases into this view when the store is shared and the last refresh is old enough; true when
   * it did (the caller then decides again). A stored lease replaces what we remember unless ours is newer (an offer
   * made since, or a bind whose commit the read did not see yet).
   */
  async refresh(): Promise<boolean> {
    if (!this.shared || this.now() - this.refreshedAt < REFRESH_MS) return false;
    this.refreshedAt = this.now();
    for (const lease of await this.store.listLeases()) {
      const ip = parseIpv4(lease.ip);
      const current = ip === undefined ? undefined : this.byIp.get(ip);
      if (!current || current.updatedAt <= lease.updatedAt) this.remember(lease);
    }
    return true;
  }

  /** Inventory reservations: address -> node name. Replaced whenever the inventory changes. */
  setReservations(reservations: Map<number, string>): void {
    this.reserved = reservations;
  }

  holder(ip: number): Holder | undefined {
    const l = this.byIp.get(ip);
    if (!l || l.state === 'released' || l.expiresAt <= this.now()) return undefined;
    return { mac: l.mac, state: l.state };
  }

  lastAddressOf(mac: string): number | undefined {
    return this.lastByMac.get(mac);
  }

  /** How many MACs have a last address remembered: at most one per address this view holds. */
  get rememberedMacs(): number {
    return this.lastByMac.size;
  }

  reservedFor(ip: number): string | undefined {
    return this.reserved.get(ip);
  }

  /** Round-robin over the pool, so a scan starts after the last address handed out instead of at the start. */
  *poolOrder(pool: PoolRange): Iterable<number> {
    const key = `${pool.start}-${pool.end}`;
    const size = pool.end - pool.start + 1;
    const from = this.cursor.get(key) ?? pool.start;
    for (let i = 0; i < size; i++) {
      const ip = pool.start + ((from - pool.start + i) % size);
      this.cursor.set(key, ip + 1 > pool.end ? pool.start : ip + 1);
      yield ip;
    }
  }

  /** Holds an offered address for a client in memory only. */
  offer(ip: number, mac: string, seconds: number): void {
    const current = this.byIp.get(ip);
    // Never let an offer overwrite a bound lease of the same client: the offer would expire sooner.
    if (current && current.mac === mac && current.state === 'bound' && current.expiresAt > this.now()) return;
    this.remember({ ip: formatIpv4(ip), mac, state: 'offered', expiresAt: this.now() + seconds * 1000, server: this.serverName, updatedAt: this.now() });
  }

  /** The client chose another server: its offer from us is void. */
  withdrawOffer(mac: string): void {
    const ip = this.lastByMac.get(mac);
    const l = ip === undefined ? undefined : this.byIp.get(ip);
    if (ip !== undefined && l?.mac === mac && l.state === 'offered') {
      this.byIp.delete(ip);
      this.lastByMac.delete(mac);
    }
  }

  /** Binds durably (group commit). Resolves after the store committed; the caller ACKs only then. */
  bind(lease: Omit<Lease, 'updatedAt' | 'server'>): Promise<ClaimResult> {
    return new Promise<ClaimResult>((resolve, reject) => {
      this.pending.push({ lease: { ...lease, server: this.serverName }, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // setImmediate runs after the poll phase: every datagram already received this turn joins the batch.
        setImmediate(() => void this.flush());
      }
    });
  }

  async release(ip: string, mac: string): Promise<void> {
    if (await this.store.releaseLease(ip, mac)) {
      const l = this.byIp.get(parseIpv4(ip)!);
      if (l) this.remember({ ...l, state: 'released', updatedAt: this.now() });
    }
  }

  async decline(ip: string, mac: string, seconds: number): Promise<void> {
    await this.store.declineLease(ip, mac, this.now() + seconds * 1000);
    const stored = await this.store.getLeaseByIp(ip);
    if (stored) this.remember(stored);
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.flushScheduled = false;
    try {
      const results = await this.store.claimLeases(batch.map((p) => p.lease), this.now());
      results.forEach((r, i) => {
        this.remember(r.ok ? r.lease : r.heldBy);
        batch[i]!.resolve(r);
      });
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
  }

  private remember(lease: Lease): void {
    const ip = parseIpv4(lease.ip);
    if (ip === undefined) return;
    if (lease.state === 'bound') {
      // The store released this MAC's other address in the same transaction; mirror that.
      const previous = this.lastByMac.get(lease.mac);
      const old = previous === undefined || previous === ip ? undefined : this.byIp.get(previous);
      if (old && old.mac === lease.mac && (old.state === 'bound' || old.state === 'offered')) {
        this.byIp.set(previous!, { ...old, state: 'released', updatedAt: lease.updatedAt });
      }
    }
    // A MAC's last address is remembered only while that address's row is still its own: otherwise every MAC ever
    // offered an address stayed in the map (months of DISCOVERs from changing MACs), and its "last address" was
    // another client's anyway.
    const displaced = this.byIp.get(ip);
    if (displaced && displaced.mac !== lease.mac && this.lastByMac.get(displaced.mac) === ip) this.lastByMac.delete(displaced.mac);
    this.byIp.set(ip, lease);
    if (lease.state === 'declined' || this.holdsLiveLease(lease.mac, ip, lease)) return;
    this.lastByMac.set(lease.mac, ip);
  }

  /**
   * Whether `mac` already holds another address, live, that a released row must not displace: rows arrive in address
   * order (load, refresh), so an old released address can come after the bound one, and the client would then be
   * moved off its live lease at its next DISCOVER.
   */
  private holdsLiveLease(mac: string, ip: number, incoming: Lease): boolean {
    if (incoming.state !== 'released') return false;
    const current = this.lastByMac.get(mac);
    if (current === undefined || current === ip) return false;
    const held = this.byIp.get(current);
    return held !== undefined && held.mac === mac && (held.state === 'bound' || held.state === 'offered') && held.expiresAt > this.now();
  }
}
