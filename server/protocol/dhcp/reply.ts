import { RackseedError } from '../../model/errors.js';
import { fromLatin1, parseIpv4, u32 } from './bytes.js';
import { buildPacket } from './builder.js';
import type { BootChoice } from './decision.js';
import { getOption, maxMessageSize, MessageType, Opt } from './options.js';
import { BOOTREPLY, FILE_LEN, FLAG_BROADCAST, type DhcpPacket, type Ipv4 } from './packet.js';
import { Discovery, encodePxeVendorOptions, pxeVendorOptions } from './pxe.js';

/**
 * Replies as pure functions of (request, what to say). Full mode hands out addresses; proxyDHCP mode
 * (pixiecore style) leaves addressing to the site's DHCP server and only says what to boot.
 */

export interface ServerIdentity {
  readonly serverIp: Ipv4;
}

export interface LeaseSpec {
  readonly yiaddr: Ipv4;
  readonly leaseSeconds: number;
  readonly subnetMask: Ipv4;
  readonly routers?: readonly Ipv4[];
  readonly dnsServers?: readonly Ipv4[];
  readonly domainName?: string;
  readonly hostName?: string;
}

function ip(s: Ipv4): Uint8Array {
  const b = parseIpv4(s);
  if (!b) throw new RackseedError('DHCP_ENCODE', `"${s}" is not an IPv4 address`, { value: s });
  return b;
}

function ips(list: readonly Ipv4[]): Uint8Array {
  const out = new Uint8Array(list.length * 4);
  list.forEach((a, i) => out.set(ip(a), i * 4));
  return out;
}

/**
 * What every reply to `req` shares: identity fields copied from the request (RFC 2131 table 3), 53 and 54,
 * and the echoes: 82 verbatim (RFC 3046 section 2.2) and 61 (RFC 6842).
 */
function replyOptions(req: DhcpPacket, type: number, server: ServerIdentity): Map<number, Uint8Array> {
  const options = new Map<number, Uint8Array>([
    [Opt.messageType, Uint8Array.of(type)],
    [Opt.serverId, ip(server.serverIp)],
  ]);
  for (const code of [Opt.clientId, Opt.relayAgentInfo]) {
    const d = getOption(req, code);
    if (d) options.set(code, d);
  }
  return options;
}

interface Fields {
  readonly flags?: number;
  readonly ciaddr?: Ipv4;
  readonly yiaddr?: Ipv4;
  readonly siaddr?: Ipv4;
  readonly sname?: string;
  readonly file?: string;
}

function reply(req: DhcpPacket, fields: Fields, options: Map<number, Uint8Array>): DhcpPacket {
  return buildPacket({
    op: BOOTREPLY,
    htype: req.htype,
    hlen: req.hlen,
    xid: req.xid,
    flags: fields.flags ?? req.flags,
    ciaddr: fields.ciaddr,
    yiaddr: fields.yiaddr,
    siaddr: fields.siaddr,
    giaddr: req.giaddr,
    chaddr: req.chaddr,
    sname: fields.sname,
    file: fields.file,
    options,
    maxMessageSize: maxMessageSize(req),
  });
}

/**
 * Boot file placement: siaddr + file for TFTP (what every PXE ROM reads); URLs also go in option 67, which UEFI
 * HTTP boot and iPXE read, and which is the only place for a name too long for the 128-byte field.
 */
function bootFields(boot: BootChoice, server: ServerIdentity, options: Map<number, Uint8Array>): Fields {
  const fits = boot.file.length < FILE_LEN;
  if (boot.transport === 'http' || !fits) options.set(Opt.bootfileName, fromLatin1(boot.file));
  if (boot.vendorClass === 'HTTPClient') options.set(Opt.vendorClassId, fromLatin1('HTTPClient'));
  return { siaddr: server.serverIp, file: fits ? boot.file : undefined };
}

function leaseOptions(options: Map<number, Uint8Array>, lease: LeaseSpec): void {
  options.set(Opt.leaseTime, u32(lease.leaseSeconds));
  // RFC 2131 section 4.4.5 defaults: renew at 50 %, rebind at 87.5 % of the lease.
  options.set(Opt.renewalTime, u32(Math.floor(lease.leaseSeconds / 2)));
  options.set(Opt.rebindingTime, u32(Math.floor((lease.leaseSeconds * 7) / 8)));
  options.set(Opt.subnetMask, ip(lease.subnetMask));
  if (lease.routers?.length) options.set(Opt.router, ips(lease.routers));
  if (lease.dnsServers?.length) options.set(Opt.dnsServers, ips(lease.dnsServers));
  if (lease.domainName) options.set(Opt.domainName, fromLatin1(lease.domainName));
  if (lease.hostName) options.set(Opt.hostName, fromLatin1(lease.hostName));
}

function leaseReply(type: number, req: DhcpPacket, server: ServerIdentity, lease: LeaseSpec, boot?: BootChoice): DhcpPacket {
  const options = replyOptions(req, type, server);
  leaseOptions(options, lease);
  const fields = boot ? bootFields(boot, server, options) : {};
  return reply(req, { ...fields, ciaddr: type === MessageType.ACK ? req.ciaddr : undefined, yiaddr: lease.yiaddr }, options);
}

export function buildOffer(req: DhcpPacket, server: ServerIdentity, lease: LeaseSpec, boot?: BootChoice): DhcpPacket {
  return leaseReply(MessageType.OFFER, req, server, lease, boot);
}

export function buildAck(req: DhcpPacket, server: ServerIdentity, lease: LeaseSpec, boot?: BootChoice): DhcpPacket {
  return leaseReply(MessageType.ACK, req, server, lease, boot);
}

export type NetworkSpec = Omit<LeaseSpec, 'yiaddr' | 'leaseSeconds' | 'hostName'>;

/**
 * The answer to DHCPINFORM: network settings for a client that already has its address. RFC 2131 section 4.3.5
 * forbids a lease time and yiaddr here; the reply goes to ciaddr.
 */
export function buildInformAck(req: DhcpPacket, server: ServerIdentity, network: NetworkSpec, boot?: BootChoice): DhcpPacket {
  const options = replyOptions(req, MessageType.ACK, server);
  options.set(Opt.subnetMask, ip(network.subnetMask));
  if (network.routers?.length) options.set(Opt.router, ips(network.routers));
  if (network.dnsServers?.length) options.set(Opt.dnsServers, ips(network.dnsServers));
  if (network.domainName) options.set(Opt.domainName, fromLatin1(network.domainName));
  const fields = boot ? bootFields(boot, server, options) : {};
  return reply(req, { ...fields, ciaddr: req.ciaddr }, options);
}

/** RFC 2131 table 3: no addresses, no lease; a relayed NAK sets the broadcast bit so the relay broadcasts it. */
export function buildNak(req: DhcpPacket, server: ServerIdentity, message?: string): DhcpPacket {
  const options = replyOptions(req, MessageType.NAK, server);
  if (message) options.set(Opt.message, fromLatin1(message));
  const relayed = req.giaddr !== '0.0.0.0';
  return reply(req, { flags: relayed ? req.flags | FLAG_BROADCAST : req.flags }, options);
}

/**
 * How a proxy offer points at the boot file. 'direct': option 43 discovery control 8 tells the ROM to take
 * siaddr/file from this offer. 'via-4011': no option 43, only sname/file, which UEFI PXE treats as "ask the boot
 * server on port 4011" (some UEFI firmwares ignore offers that bypass discovery; pixiecore does the same).
 */
export type ProxyStyle = 'direct' | 'via-4011';

export function defaultProxyStyle(boot: BootChoice): ProxyStyle {
  const uefiPxe = boot.stage === 'loader' && boot.vendorClass === 'PXEClient' && boot.firmware?.startsWith('uefi') === true;
  return uefiPxe ? 'via-4011' : 'direct';
}

function proxyOptions(req: DhcpPacket, type: number, server: ServerIdentity, boot: BootChoice): Map<number, Uint8Array> {
  const options = replyOptions(req, type, server);
  // The PXE spec has the boot server identify itself with the client's class string, odd as that is.
  options.set(Opt.vendorClassId, fromLatin1(boot.vendorClass));
  const guid = getOption(req, Opt.clientMachineId);
  if (guid) options.set(Opt.clientMachineId, guid);
  if (boot.transport === 'http') options.set(Opt.bootfileName, fromLatin1(boot.file));
  return options;
}

export function buildProxyOffer(req: DhcpPacket, server: ServerIdentity, boot: BootChoice, style = defaultProxyStyle(boot)): DhcpPacket {
  const options = proxyOptions(req, MessageType.OFFER, server, boot);
  if (boot.vendorClass === 'PXEClient' && style === 'direct') {
    options.set(Opt.vendorSpecific, encodePxeVendorOptions({ discoveryControl: Discovery.useBootFile }));
  }
  const file = boot.file.length < FILE_LEN ? boot.file : undefined;
  return reply(
    req,
    { siaddr: server.serverIp, sname: style === 'via-4011' ? server.serverIp : undefined, file },
    options,
  );
}

/** The port-4011 answer: carries the boot file, and echoes the boot item the client asked for (PXE spec 2.2.6). */
export function buildProxyAck(req: DhcpPacket, server: ServerIdentity, boot: BootChoice): DhcpPacket {
  const options = proxyOptions(req, MessageType.ACK, server, boot);
  if (boot.vendorClass === 'PXEClient') {
    const bootItem = pxeVendorOptions(req)?.bootItem;
    options.set(Opt.vendorSpecific, encodePxeVendorOptions({ discoveryControl: Discovery.useBootFile, bootItem }));
  }
  const file = boot.file.length < FILE_LEN ? boot.file : undefined;
  return reply(req, { ciaddr: req.ciaddr, siaddr: server.serverIp, file }, options);
}
