import { isZeroIpv4 } from './bytes.js';
import { MessageType } from './options.js';
import { FLAG_BROADCAST, type DhcpPacket, type Ipv4 } from './packet.js';

/**
 * Where a reply goes (RFC 2131 section 4.1), as a pure function of the request, so the listener only sends.
 */

export const SERVER_PORT = 67;
export const CLIENT_PORT = 68;
export const PROXY_PORT = 4011;
export const BROADCAST: Ipv4 = '255.255.255.255';

export type RouteReason = 'proxy-source' | 'relay' | 'nak-broadcast' | 'client-address' | 'broadcast-flag' | 'no-address';

export interface ReplyRoute {
  readonly address: Ipv4;
  readonly port: number;
  readonly reason: RouteReason;
}

export interface RouteInput {
  readonly request: Pick<DhcpPacket, 'giaddr' | 'ciaddr' | 'flags'>;
  /** Message type of the reply being sent (NAKs are routed differently). */
  readonly replyType: number;
  /** The socket the request arrived on: 67 (DHCP, proxyDHCP offers) or 4011 (PXE boot server). */
  readonly receivedOn: 'dhcp' | 'proxy';
  /** UDP source of the request; required for port 4011, where the client already has an address. */
  readonly source?: { readonly address: Ipv4; readonly port: number };
}

export function replyDestination(input: RouteInput): ReplyRoute {
  const { request, replyType, receivedOn, source } = input;
  // PXE spec: a 4011 request comes from a configured client, unicast; the answer goes back where it came from.
  if (receivedOn === 'proxy' && source) return { address: source.address, port: source.port, reason: 'proxy-source' };
  if (!isZeroIpv4(request.giaddr)) return { address: request.giaddr, port: SERVER_PORT, reason: 'relay' };
  // A NAK means the client's idea of its address is wrong: never unicast to it.
  if (replyType === MessageType.NAK) return { address: BROADCAST, port: CLIENT_PORT, reason: 'nak-broadcast' };
  // Only a client that has an address (RENEWING, INFORM) sets ciaddr: a DISCOVER never does (RFC 2131 table 5), so
  // an OFFER is never sent to one. Honoured there, a stray or forged DISCOVER made the server send its OFFER to
  // whatever address it named, through its default route.
  if (!isZeroIpv4(request.ciaddr) && replyType !== MessageType.OFFER) return { address: request.ciaddr, port: CLIENT_PORT, reason: 'client-address' };
  if (request.flags & FLAG_BROADCAST) return { address: BROADCAST, port: CLIENT_PORT, reason: 'broadcast-flag' };
  // RFC 2131 would unicast to chaddr/yiaddr here, which needs an ARP entry user space cannot add. Every client
  // accepts a broadcast reply, so that is what goes out.
  return { address: BROADCAST, port: CLIENT_PORT, reason: 'no-address' };
}
