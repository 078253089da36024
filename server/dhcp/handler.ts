import type { DhcpPacket, Ipv4 } from '../protocol/dhcp/packet.js';
import type { ReplyRoute } from '../protocol/dhcp/destination.js';

/** A decoded request and where it came from. */
export interface Incoming {
  packet: DhcpPacket;
  /** 'dhcp' = port 67; 'proxy' = port 4011 (PXE boot server discovery, proxy mode only). */
  receivedOn: 'dhcp' | 'proxy';
  source: { address: Ipv4; port: number };
}

export type ReplyKind = 'offer' | 'ack' | 'nak' | 'inform' | 'proxy-offer' | 'proxy-ack';

export interface Outgoing {
  kind: ReplyKind;
  packet: DhcpPacket;
  route: ReplyRoute;
}

/** One mode of the DHCP server (smee's shape: reservation and proxy behind one interface). */
export interface DhcpModeHandler {
  handle(incoming: Incoming): Promise<Outgoing | undefined>;
}
