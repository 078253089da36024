import { findNodeByMac } from '../inventory/index.js';
import { nodeLogger, type Logger } from '../log.js';
import type { Inventory } from '../model/inventory.js';
import { decideBoot, type BootContext } from '../protocol/dhcp/decision.js';
import { replyDestination } from '../protocol/dhcp/destination.js';
import { MessageType, messageType } from '../protocol/dhcp/options.js';
import { buildProxyAck, buildProxyOffer } from '../protocol/dhcp/reply.js';
import type { DhcpModeHandler, Incoming, Outgoing } from './handler.js';
import { bump, type DhcpStats } from './stats.js';

/**
 * proxyDHCP (pixiecore style): never hands out an address. On port 67 it answers a netboot client's DISCOVER
 * with boot information only; on port 4011 it answers the PXE boot-server REQUEST. Everything else belongs to
 * the site's DHCP server and is left alone.
 */
export class ProxyModeHandler implements DhcpModeHandler {
  constructor(
    private readonly boot: BootContext,
    private readonly stats: DhcpStats,
    private readonly log: Logger,
    /** The inventory now, so that a line about a known machine names its node. */
    private readonly inventory: () => Inventory,
  ) {}

  async handle({ packet, receivedOn, source }: Incoming): Promise<Outgoing | undefined> {
    const type = messageType(packet);
    const expected = receivedOn === 'dhcp' ? MessageType.DISCOVER : MessageType.REQUEST;
    if (type !== expected) {
      bump(this.stats.ignored, receivedOn === 'dhcp' ? 'proxy-not-discover' : 'proxy-not-request');
      return undefined;
    }
    const decision = decideBoot(packet, this.boot);
    if (decision.kind === 'ignore') {
      bump(this.stats.ignored, decision.reason);
      return undefined;
    }
    const node = findNodeByMac(this.inventory(), decision.mac);
    const log = nodeLogger(this.log, { mac: decision.mac, ...(node ? { name: node.name } : {}) });
    if (receivedOn === 'dhcp') {
      const reply = buildProxyOffer(packet, { serverIp: this.boot.serverIp }, decision);
      this.stats.proxyOffers++;
      log.debug({ file: decision.file, firmware: decision.firmware }, 'proxyDHCP offer');
      return { kind: 'proxy-offer', packet: reply, route: replyDestination({ request: packet, replyType: MessageType.OFFER, receivedOn, source }) };
    }
    const reply = buildProxyAck(packet, { serverIp: this.boot.serverIp }, decision);
    this.stats.proxyAcks++;
    log.info({ file: decision.file, firmware: decision.firmware }, 'proxyDHCP boot file sent');
    return { kind: 'proxy-ack', packet: reply, route: replyDestination({ request: packet, replyType: MessageType.ACK, receivedOn, source }) };
  }
}
