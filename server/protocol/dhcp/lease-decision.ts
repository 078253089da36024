import { inSubnet, type Ipv4Subnet } from '../../model/ipv4.js';

/**
 * Full-mode address decisions as pure functions over a read-only view of who holds what. The listener's lease
 * book implements the view (offers in memory, bound leases from the store); these functions only decide.
 *
 * Addresses are numbers here (parseIpv4 of the model) so pool scans are arithmetic, not string work.
 */

export interface PoolRange {
  start: number;
  end: number;
}

export interface SubnetScope {
  subnet: Ipv4Subnet;
  pool?: PoolRange;
  /**
   * Addresses never handed out here, whoever reserves them: the network and broadcast addresses, the server's own
   * and the routers'. A client uses what it is offered without checking for a conflict (PXE ROMs never do).
   */
  unusable?: ReadonlySet<number>;
}

export interface Holder {
  mac: string;
  state: 'offered' | 'bound' | 'declined';
}

export interface LeaseView {
  /** Who holds `ip` right now (unexpired offer, bound lease or quarantine), if anyone. */
  holder(ip: number): Holder | undefined;
  /** The address this MAC holds or held last, if any. */
  lastAddressOf(mac: string): number | undefined;
  /** The inventory node an address is reserved for, if any (a reservation is never handed to another MAC). */
  reservedFor(ip: number): string | undefined;
  /** Pool addresses in the order to try them, starting where the previous scan stopped. */
  poolOrder(pool: PoolRange): Iterable<number>;
}

export interface Client {
  mac: string;
  /** The address the inventory reserves for this MAC's node, if any. */
  reserved?: number;
}

export type OfferDecision =
  | { kind: 'offer'; ip: number; source: 'reservation' | 'previous' | 'requested' | 'pool' }
  | { kind: 'ignore'; reason: 'reservation-held' | 'reservation-declined' | 'reservation-elsewhere' | 'reservation-unusable' | 'no-pool' | 'pool-exhausted' };

export type RequestDecision =
  | { kind: 'ack'; ip: number }
  | { kind: 'nak'; reason: string }
  | { kind: 'ignore'; reason: 'other-server' | 'no-address' | 'not-ours' };

function inPool(ip: number, pool: PoolRange | undefined): boolean {
  return pool !== undefined && ip >= pool.start && ip <= pool.end;
}

/** Free for this MAC: nobody else holds it, it is not quarantined, and it is not someone else's reservation. */
function availableTo(ip: number, mac: string, view: LeaseView): boolean {
  const h = view.holder(ip);
  if (h && (h.mac !== mac || h.state === 'declined')) return false;
  return view.reservedFor(ip) === undefined;
}

/** DHCPDISCOVER: which address to offer, in order of preference. */
export function chooseOffer(client: Client, scope: SubnetScope, view: LeaseView, requested?: number): OfferDecision {
  const { mac, reserved } = client;
  if (reserved !== undefined) {
    // A node is reached at its reserved address (SSH, convergence, reimage): a pool address from the subnet it
    // happens to ask on would let it install and then never be found.
    if (!inSubnet(reserved, scope.subnet)) return { kind: 'ignore', reason: 'reservation-elsewhere' };
    if (scope.unusable?.has(reserved)) return { kind: 'ignore', reason: 'reservation-unusable' };
    const h = view.holder(reserved);
    if (h && h.mac !== mac) return { kind: 'ignore', reason: 'reservation-held' };
    // The node itself declined it (another host answers ARP for it): offering it again only loops.
    if (h?.state === 'declined') return { kind: 'ignore', reason: 'reservation-declined' };
    return { kind: 'offer', ip: reserved, source: 'reservation' };
  }
  const { pool } = scope;
  if (!pool) return { kind: 'ignore', reason: 'no-pool' };
  const previous = view.lastAddressOf(mac);
  if (previous !== undefined && inPool(previous, pool) && availableTo(previous, mac, view)) {
    return { kind: 'offer', ip: previous, source: 'previous' };
  }
  if (requested !== undefined && inPool(requested, pool) && availableTo(requested, mac, view)) {
    return { kind: 'offer', ip: requested, source: 'requested' };
  }
  for (const ip of view.poolOrder(pool)) {
    if (availableTo(ip, mac, view)) return { kind: 'offer', ip, source: 'pool' };
  }
  return { kind: 'ignore', reason: 'pool-exhausted' };
}

/**
 * DHCPDECLINE: only the client an address went to may quarantine it (RFC 2131 4.4.1: it declines what it was
 * given). The store checks bound leases, but offers live in memory and a reservation has no row until bound: without
 * this, any MAC could take an address offered to another, or keep a node off its reservation for decline_seconds.
 */
export function mayDecline(client: Client, ip: number, view: LeaseView): boolean {
  const h = view.holder(ip);
  if (h && h.mac !== client.mac && h.state !== 'declined') return false;
  return view.reservedFor(ip) === undefined || client.reserved === ip;
}

export interface RequestInput {
  /** Option 54 compared with our identifier: undefined when the client sent none (init-reboot, renew). */
  serverIdMatches: boolean | undefined;
  /** Option 50, else ciaddr (renewing/rebinding); undefined if neither. */
  target: number | undefined;
  /** The target lies in another subnet this server serves: the client moved (RFC 2131 4.3.2: NAK, wrong network). */
  targetOnOtherServedSubnet?: boolean;
}

/**
 * DHCPREQUEST. Only what is ours is answered: a request naming another server is ignored, an address outside
 * our subnets is left alone unless the client is talking to us (RFC 2131 4.3.2: no record -> stay silent), and
 * a NAK is sent only for an address we hand out and cannot give to this client, or one of our other subnets' (the
 * client moved: 4.3.2 asks for a NAK on the wrong network, and it then starts over with a DISCOVER).
 */
export function decideRequest(client: Client, scope: SubnetScope, view: LeaseView, input: RequestInput): RequestDecision {
  if (input.serverIdMatches === false) return { kind: 'ignore', reason: 'other-server' };
  const target = input.target;
  if (target === undefined) return { kind: 'ignore', reason: 'no-address' };
  const addressedToUs = input.serverIdMatches === true;
  const { mac, reserved } = client;
  /** Ours to NAK: on this subnet, on another subnet we serve (the client moved), or asked of us by name. */
  const ours = inSubnet(target, scope.subnet) || addressedToUs || input.targetOnOtherServedSubnet === true;

  if (reserved !== undefined) {
    const home = inSubnet(reserved, scope.subnet);
    if (home && target === reserved) {
      if (scope.unusable?.has(reserved)) return { kind: 'nak', reason: 'reserved address is the network, broadcast, server or router address' };
      const h = view.holder(reserved);
      if (h && h.mac !== mac) return { kind: 'nak', reason: 'reserved address is held by another client' };
      if (h?.state === 'declined') return { kind: 'nak', reason: 'reserved address is quarantined: this client declined it (in use by another host)' };
      return { kind: 'ack', ip: reserved };
    }
    if (!ours) return { kind: 'ignore', reason: 'not-ours' };
    // Reserved on another subnet than the one it asks on: never a pool address here (chooseOffer offers none), also
    // not one it leased before it had a reservation, or it would install where it can never be found.
    return { kind: 'nak', reason: home ? 'this client has a different reserved address' : 'this client\'s reserved address is on another subnet' };
  }

  if (inPool(target, scope.pool)) {
    return availableTo(target, mac, view) ? { kind: 'ack', ip: target } : { kind: 'nak', reason: 'address is in use' };
  }
  if (inSubnet(target, scope.subnet) && view.reservedFor(target) !== undefined) {
    return { kind: 'nak', reason: 'address is reserved for another node' };
  }
  if (addressedToUs) return { kind: 'nak', reason: 'address was not offered by this server' };
  if (input.targetOnOtherServedSubnet) return { kind: 'nak', reason: 'address belongs to another subnet than the one the client is on' };
  return { kind: 'ignore', reason: 'not-ours' };
}
