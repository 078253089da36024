/** DHCP counters: what came in, what was dropped and why, what went out. Read by the API and metrics. */
export interface DhcpStats {
  received: number;
  /** Datagrams that were not valid DHCP (decode errors by code) or could not be handled. */
  dropped: Record<string, number>;
  /** Valid requests deliberately not answered, by reason (not a netboot client, another server chosen, ...). */
  ignored: Record<string, number>;
  offers: number;
  acks: number;
  naks: number;
  proxyOffers: number;
  proxyAcks: number;
  informs: number;
  releases: number;
  declines: number;
  sendErrors: number;
  /**
   * REQUESTs whose lease the store refused because another client (through another server sharing the store) holds
   * the address: each was NAKed, never ACKed. Also counted in naks, so not part of accountedFor.
   */
  claimsRefused: number;
}

export function emptyDhcpStats(): DhcpStats {
  return { received: 0, dropped: {}, ignored: {}, offers: 0, acks: 0, naks: 0, proxyOffers: 0, proxyAcks: 0, informs: 0, releases: 0, declines: 0, sendErrors: 0, claimsRefused: 0 };
}

export function bump(table: Record<string, number>, key: string): void {
  table[key] = (table[key] ?? 0) + 1;
}

const sum = (t: Record<string, number>) => Object.values(t).reduce((a, b) => a + b, 0);

/** Every datagram received ends in exactly one of these; equal to `received` once the server is idle. */
export function accountedFor(s: DhcpStats): number {
  return sum(s.dropped) + sum(s.ignored) + s.offers + s.acks + s.naks + s.informs + s.releases + s.declines + s.proxyOffers + s.proxyAcks;
}
