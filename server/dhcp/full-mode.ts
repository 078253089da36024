import type { DhcpConfig, DhcpSubnetConfig } from '../config.js';
import { findNodeByMac } from '../inventory/index.js';
import type { Logger } from '../log.js';
import { addressesNeverLeased, formatIpv4, inSubnet, parseCidr, parseIpv4, type Ipv4Subnet } from '../model/ipv4.js';
import { isZeroIpv4 } from '../protocol/dhcp/bytes.js';
import { decideBoot, type BootChoice, type BootContext } from '../protocol/dhcp/decision.js';
import { replyDestination } from '../protocol/dhcp/destination.js';
import { chooseOffer, decideRequest, mayDecline, type SubnetScope } from '../protocol/dhcp/lease-decision.js';
import { MessageType, messageType, requestedIp, serverIdentifier } from '../protocol/dhcp/options.js';
import type { DhcpPacket } from '../protocol/dhcp/packet.js';
import { buildAck, buildInformAck, buildNak, buildOffer, type LeaseSpec, type NetworkSpec } from '../protocol/dhcp/reply.js';
import type { InventoryService } from '../services/inventory-service.js';
import type { DhcpModeHandler, Incoming, Outgoing } from './handler.js';
import type { LeaseBook } from './lease-book.js';
import { bump, type DhcpStats } from './stats.js';

interface ServedSubnet {
  config: DhcpSubnetConfig;
  scope: SubnetScope;
  network: NetworkSpec;
}

/** The addresses of a subnet no client may be given (model/ipv4.ts), each with what it is (for the warning). */
function unusableAddresses(subnet: Ipv4Subnet, s: DhcpSubnetConfig, serverIp: string | undefined): Map<number, string> {
  const out = new Map<number, string>();
  for (const { ip, what, address } of addressesNeverLeased(subnet, serverIp, s.routers)) {
    if (!out.has(ip)) out.set(ip, what === 'server' ? 'this server\'s address (dhcp.server_ip)' : what === 'router' ? `the router ${address}` : `the ${what} address`);
  }
  return out;
}

function compileSubnet(s: DhcpSubnetConfig, serverIp: string): ServedSubnet {
  const subnet = parseCidr(s.cidr) as Ipv4Subnet;
  const scope: SubnetScope = { subnet, unusable: new Set(unusableAddresses(subnet, s, serverIp).keys()) };
  if (s.pool) scope.pool = { start: parseIpv4(s.pool.start)!, end: parseIpv4(s.pool.end)! };
  const network: NetworkSpec = { subnetMask: formatIpv4(subnet.mask), routers: s.routers, dnsServers: s.dns };
  return { config: s, scope, network: s.domain ? { ...network, domainName: s.domain } : network };
}

/**
 * Inventory nodes whose reserved address full mode never hands out: in none of the served subnets, or a subnet's
 * network, broadcast, server or router address (an inventory range such as n[001-300] from .10 counts straight
 * through .255). Their nodes get no answer (see chooseOffer), so the operator hears of it when the inventory is
 * loaded, not when a node stays silent.
 */
export function unusableReservations(nodes: Iterable<{ name: string; ip?: string }>, subnets: readonly DhcpSubnetConfig[], serverIp?: string): Array<{ node: string; ip: string; problem: string }> {
  const served = subnets.flatMap((s) => {
    const subnet = parseCidr(s.cidr);
    return subnet ? [{ subnet, unusable: unusableAddresses(subnet, s, serverIp) }] : [];
  });
  const out: Array<{ node: string; ip: string; problem: string }> = [];
  for (const n of nodes) {
    const ip = n.ip === undefined ? undefined : parseIpv4(n.ip);
    if (ip === undefined) continue;
    const home = served.find((s) => inSubnet(ip, s.subnet));
    const problem = home ? home.unusable.get(ip) : 'in none of dhcp.subnets';
    if (problem !== undefined) out.push({ node: n.name, ip: n.ip!, problem: home ? `${problem} of ${formatIpv4(home.subnet.network)}/${home.subnet.prefix}` : problem });
  }
  return out;
}

/**
 * Full mode: addresses for inventory nodes from their reservations and, when a subnet has a pool, for unknown
 * machines too (so they can be discovered), plus boot information for netboot clients. A lease is committed to
 * the store before its ACK leaves.
 */
export class FullModeHandler implements DhcpModeHandler {
  private readonly subnets: ServedSubnet[];
  private readonly local: ServedSubnet;
  private readonly serverIp: string;

  constructor(
    private readonly config: DhcpConfig,
    private readonly inventory: InventoryService,
    private readonly book: LeaseBook,
    private readonly boot: BootContext,
    private readonly stats: DhcpStats,
    private readonly log: Logger,
  ) {
    this.serverIp = config.serverIp!;
    this.subnets = config.subnets.map((s) => compileSubnet(s, config.serverIp!));
    const server = parseIpv4(this.serverIp)!;
    // Config validation guarantees the server's own subnet is listed.
    this.local = this.subnets.find((s) => inSubnet(server, s.scope.subnet))!;
  }

  /**
   * Relayed requests are served from the subnet holding the relay's address. A request that reached us directly
   * with ciaddr set (RENEWING, INFORM: RFC 2131 4.3.2, 4.3.5) comes from a client that already has an address, which
   * may be on a relayed subnet, since renewals are unicast straight to the server: its subnet is the one holding
   * ciaddr. Everything else is from our own segment.
   */
  private subnetFor(packet: DhcpPacket): ServedSubnet | undefined {
    if (!isZeroIpv4(packet.giaddr)) {
      const relay = parseIpv4(packet.giaddr)!;
      return this.subnets.find((s) => inSubnet(relay, s.scope.subnet));
    }
    const client = isZeroIpv4(packet.ciaddr) ? undefined : parseIpv4(packet.ciaddr);
    return (client === undefined ? undefined : this.subnets.find((s) => inSubnet(client, s.scope.subnet))) ?? this.local;
  }

  async handle({ packet, receivedOn, source }: Incoming): Promise<Outgoing | undefined> {
    const mac = packet.mac;
    if (!mac) return this.ignore('no-mac');
    const served = this.subnetFor(packet);
    if (!served) return this.ignore('no-subnet-for-relay');
    const node = findNodeByMac(this.inventory.inventory, mac);
    const reserved = node?.ip === undefined ? undefined : parseIpv4(node.ip);
    const client = reserved === undefined ? { mac } : { mac, reserved };
    // Fields rather than a child logger: this runs for every packet.
    const who = node ? { mac, node: node.name } : { mac };
    const route = (replyType: number) => replyDestination({ request: packet, replyType, receivedOn, source });
    const lease = (ip: number): LeaseSpec => ({
      ...served.network,
      yiaddr: formatIpv4(ip),
      leaseSeconds: node?.leaseSeconds ?? this.config.leaseSeconds,
      ...(node ? { hostName: node.name } : {}),
    });
    const bootFor = (): BootChoice | undefined => {
      const d = decideBoot(packet, this.boot);
      return d.kind === 'boot' ? d : undefined;
    };
    const sid = serverIdentifier(packet);
    const sidMatches = sid === undefined ? undefined : sid === this.serverIp;

    switch (messageType(packet)) {
      case MessageType.DISCOVER: {
        const requested = requestedIp(packet);
        const wanted = requested === undefined ? undefined : parseIpv4(requested);
        let d = chooseOffer(client, served.scope, this.book, wanted);
        // Our view may be stale when other servers share the store: look again before turning the client away.
        if (d.kind === 'ignore' && d.reason !== 'no-pool' && (await this.book.refresh())) d = chooseOffer(client, served.scope, this.book, wanted);
        if (d.kind === 'ignore') {
          if (d.reason === 'reservation-elsewhere') {
            this.log.warn({ ...who, reserved: node?.ip, askedOn: served.config.cidr }, 'not answered: the node\'s reserved address is not in the subnet it asks on (it would be unreachable at that address)');
          } else if (d.reason === 'reservation-unusable') {
            this.log.warn({ ...who, reserved: node?.ip }, 'not answered: the node\'s reserved address is its subnet\'s network, broadcast, server or router address');
          } else if (d.reason === 'reservation-declined') {
            this.log.warn({ ...who, reserved: node?.ip }, 'not answered: the node declined its reserved address (another host uses it); it stays quarantined for dhcp.decline_seconds');
          } else if (d.reason !== 'no-pool') {
            this.log.warn({ ...who, reason: d.reason }, 'no address to offer');
          }
          return this.ignore(d.reason);
        }
        this.book.offer(d.ip, mac, this.config.offerSeconds);
        this.stats.offers++;
        if (this.log.isLevelEnabled('debug')) this.log.debug({ ...who, ip: formatIpv4(d.ip), source: d.source }, 'offer');
        return { kind: 'offer', packet: buildOffer(packet, { serverIp: this.serverIp }, lease(d.ip), bootFor()), route: route(MessageType.OFFER) };
      }
      case MessageType.REQUEST: {
        const wanted = requestedIp(packet) ?? (isZeroIpv4(packet.ciaddr) ? undefined : packet.ciaddr);
        const target = wanted === undefined ? undefined : parseIpv4(wanted);
        const targetOnOtherServedSubnet = target !== undefined && this.subnets.some((s) => s !== served && inSubnet(target, s.scope.subnet));
        const input = { serverIdMatches: sidMatches, target, targetOnOtherServedSubnet };
        let d = decideRequest(client, served.scope, this.book, input);
        if (d.kind === 'nak' && (await this.book.refresh())) d = decideRequest(client, served.scope, this.book, input);
        if (d.kind === 'ignore') {
          if (d.reason === 'other-server') this.book.withdrawOffer(mac);
          return this.ignore(d.reason);
        }
        if (d.kind === 'nak') return this.nak(packet, d.reason, who, route(MessageType.NAK));
        const spec = lease(d.ip);
        const claim = await this.book.bind({
          ip: spec.yiaddr,
          mac,
          state: 'bound',
          expiresAt: Date.now() + spec.leaseSeconds * 1000,
          ...(node ? { hostname: node.name } : {}),
        });
        // The store is the arbiter: another server (or a stale view) may have bound it first.
        if (!claim.ok) {
          // The book now remembers the holder, so this client's next DISCOVER is offered another address.
          this.stats.claimsRefused++;
          this.log.warn({ ...who, ip: spec.yiaddr, heldBy: claim.heldBy.mac, heldVia: claim.heldBy.server }, 'store refused the lease: the address is held through another server');
          return this.nak(packet, `address is held by ${claim.heldBy.mac}`, who, route(MessageType.NAK));
        }
        this.stats.acks++;
        this.log.info({ ...who, ip: spec.yiaddr, leaseSeconds: spec.leaseSeconds }, 'lease bound');
        return { kind: 'ack', packet: buildAck(packet, { serverIp: this.serverIp }, spec, bootFor()), route: route(MessageType.ACK) };
      }
      case MessageType.RELEASE: {
        if (sidMatches !== true || isZeroIpv4(packet.ciaddr)) return this.ignore('release-not-ours');
        await this.book.release(packet.ciaddr, mac);
        this.stats.releases++;
        this.log.info({ ...who, ip: packet.ciaddr }, 'lease released');
        return undefined;
      }
      case MessageType.DECLINE: {
        const ip = requestedIp(packet);
        if (sidMatches !== true || ip === undefined) return this.ignore('decline-not-ours');
        const address = parseIpv4(ip);
        if (address !== undefined && !mayDecline(client, address, this.book)) {
          this.log.warn({ ...who, ip, heldBy: this.book.holder(address)?.mac, reservedFor: this.book.reservedFor(address) }, 'DECLINE ignored: the address was not given to this client');
          return this.ignore('decline-not-holder');
        }
        await this.book.decline(ip, mac, this.config.declineSeconds);
        this.stats.declines++;
        this.log.warn({ ...who, ip }, 'address declined by the client (in use by another host): quarantined');
        return undefined;
      }
      case MessageType.INFORM: {
        if (isZeroIpv4(packet.ciaddr)) return this.ignore('inform-without-ciaddr');
        // Parameters that fit the client (RFC 2131 4.3.5): a host on a network we do not serve would get ours.
        const from = parseIpv4(packet.ciaddr);
        if (isZeroIpv4(packet.giaddr) && (from === undefined || !inSubnet(from, served.scope.subnet))) return this.ignore('inform-foreign');
        this.stats.informs++;
        return { kind: 'inform', packet: buildInformAck(packet, { serverIp: this.serverIp }, served.network, bootFor()), route: route(MessageType.ACK) };
      }
      default:
        return this.ignore('unexpected-message-type');
    }
  }

  private ignore(reason: string): undefined {
    bump(this.stats.ignored, reason);
    return undefined;
  }

  private nak(packet: DhcpPacket, reason: string, who: { mac: string; node?: string }, route: Outgoing['route']): Outgoing {
    this.stats.naks++;
    this.log.info({ ...who, reason, requested: requestedIp(packet) ?? packet.ciaddr }, 'NAK');
    return { kind: 'nak', packet: buildNak(packet, { serverIp: this.serverIp }, reason), route };
  }
}
