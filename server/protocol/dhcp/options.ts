import { concatBytes, hex, ipv4FromBytes, latin1, readU16, readU32 } from './bytes.js';
import { AREA_ORDER, OPT_END, OPT_PAD, type DhcpPacket, type Ipv4 } from './packet.js';
import { parseSubOptions, type SubOption } from './suboptions.js';

/**
 * Typed reads of the options the server acts on. Every accessor returns undefined for an absent OR malformed
 * option: a client that sends a 3-byte lease time is treated as not having sent one, never as an exception.
 */

export const Opt = {
  subnetMask: 1,
  router: 3,
  dnsServers: 6,
  hostName: 12,
  domainName: 15,
  vendorSpecific: 43,
  requestedIp: 50,
  leaseTime: 51,
  overload: 52,
  messageType: 53,
  serverId: 54,
  parameterRequestList: 55,
  message: 56,
  maxMessageSize: 57,
  renewalTime: 58,
  rebindingTime: 59,
  vendorClassId: 60,
  clientId: 61,
  tftpServerName: 66,
  bootfileName: 67,
  userClass: 77,
  relayAgentInfo: 82,
  clientArch: 93,
  clientNdi: 94,
  clientMachineId: 97,
  ipxeEncap: 175,
} as const;

export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type MessageTypeName = keyof typeof MessageType;
export type MessageTypeCode = (typeof MessageType)[MessageTypeName];

export function messageTypeName(code: number): MessageTypeName | undefined {
  for (const [name, value] of Object.entries(MessageType)) if (value === code) return name as MessageTypeName;
  return undefined;
}

/** All instances of `code`, concatenated per RFC 3396 in area order (options, then file, then sname). */
export function getOption(p: DhcpPacket, code: number): Uint8Array | undefined {
  if (code === OPT_PAD || code === OPT_END) return undefined;
  const parts: Uint8Array[] = [];
  for (const area of AREA_ORDER) {
    for (const o of p.options) if (o.area === area && o.code === code) parts.push(o.data);
  }
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0] : concatBytes(parts);
}

export function hasOption(p: DhcpPacket, code: number): boolean {
  return p.options.some((o) => o.code === code);
}

/** Distinct option codes in first-seen order (pad and end excluded). */
export function optionCodes(p: DhcpPacket): number[] {
  const seen = new Set<number>();
  for (const o of p.options) if (o.code !== OPT_PAD && o.code !== OPT_END) seen.add(o.code);
  return [...seen];
}

function fixed(p: DhcpPacket, code: number, len: number): Uint8Array | undefined {
  const d = getOption(p, code);
  return d && d.length === len ? d : undefined;
}

/** Option 53. The raw code, which may be one this server does not handle (e.g. RFC 4388 leasequery). */
export function messageType(p: DhcpPacket): number | undefined {
  return fixed(p, Opt.messageType, 1)?.[0];
}

export function serverIdentifier(p: DhcpPacket): Ipv4 | undefined {
  const d = fixed(p, Opt.serverId, 4);
  return d && ipv4FromBytes(d);
}

export function requestedIp(p: DhcpPacket): Ipv4 | undefined {
  const d = fixed(p, Opt.requestedIp, 4);
  return d && ipv4FromBytes(d);
}

export function leaseTime(p: DhcpPacket): number | undefined {
  const d = fixed(p, Opt.leaseTime, 4);
  return d && readU32(d, 0);
}

export function parameterRequestList(p: DhcpPacket): number[] | undefined {
  const d = getOption(p, Opt.parameterRequestList);
  return d && [...d];
}

/** Option 57. RFC 2132 forbids values under 576; those are reported as absent. */
export function maxMessageSize(p: DhcpPacket): number | undefined {
  const d = fixed(p, Opt.maxMessageSize, 2);
  const v = d && readU16(d, 0);
  return v !== undefined && v >= 576 ? v : undefined;
}

export function vendorClassId(p: DhcpPacket): string | undefined {
  const d = getOption(p, Opt.vendorClassId);
  return d && latin1(d);
}

export interface ClientIdentifier {
  readonly type: number;
  readonly id: Uint8Array;
}

export function clientIdentifier(p: DhcpPacket): ClientIdentifier | undefined {
  const d = getOption(p, Opt.clientId);
  return d && d.length >= 2 ? { type: d[0]!, id: d.subarray(1) } : undefined;
}

/** Options 66/67 are strings; some servers NUL-terminate them, so a trailing NUL is not part of the name. */
function optString(p: DhcpPacket, code: number): string | undefined {
  const d = getOption(p, code);
  if (!d) return undefined;
  const end = d.indexOf(0);
  return latin1(end < 0 ? d : d.subarray(0, end));
}

export function tftpServerName(p: DhcpPacket): string | undefined {
  return optString(p, Opt.tftpServerName);
}

export function bootfileName(p: DhcpPacket): string | undefined {
  return optString(p, Opt.bootfileName);
}

export interface UserClass {
  /** 'rfc3004' when the data parses as length-prefixed instances; 'raw' for clients (iPXE) that send a bare string. */
  readonly format: 'rfc3004' | 'raw';
  readonly classes: readonly string[];
}

export function parseUserClass(d: Uint8Array): UserClass {
  const classes: string[] = [];
  let i = 0;
  while (i < d.length) {
    const len = d[i]!;
    // RFC 3004 forbids zero-length instances; that, or a length past the end, means it is not RFC 3004 at all.
    if (len === 0 || i + 1 + len > d.length) return { format: 'raw', classes: [latin1(d)] };
    classes.push(latin1(d.subarray(i + 1, i + 1 + len)));
    i += 1 + len;
  }
  return classes.length > 0 ? { format: 'rfc3004', classes } : { format: 'raw', classes: [''] };
}

export function userClass(p: DhcpPacket): UserClass | undefined {
  const d = getOption(p, Opt.userClass);
  return d && parseUserClass(d);
}

export interface RelayAgentInfo {
  /** The option data exactly as received: RFC 3046 section 2.2 requires it echoed unchanged. */
  readonly raw: Uint8Array;
  /** Undefined when the data is not a valid sub-option list; `raw` is still echoed. */
  readonly subOptions: readonly SubOption[] | undefined;
}

export function relayAgentInfo(p: DhcpPacket): RelayAgentInfo | undefined {
  const d = getOption(p, Opt.relayAgentInfo);
  return d && { raw: d, subOptions: parseSubOptions(d, false) };
}

/** Option 93 (RFC 4578): a list of 16-bit architecture types, most preferred first. */
export function clientArchitectures(p: DhcpPacket): number[] | undefined {
  const d = getOption(p, Opt.clientArch);
  if (!d || d.length === 0 || d.length % 2 !== 0) return undefined;
  const out: number[] = [];
  for (let i = 0; i < d.length; i += 2) out.push(readU16(d, i));
  return out;
}

export interface ClientNdi {
  readonly type: number;
  readonly major: number;
  readonly minor: number;
}

/** Option 94 (RFC 4578): network interface type 1 = UNDI, then the UNDI version. */
export function clientNdi(p: DhcpPacket): ClientNdi | undefined {
  const d = fixed(p, Opt.clientNdi, 3);
  return d && { type: d[0]!, major: d[1]!, minor: d[2]! };
}

export interface ClientMachineId {
  readonly type: number;
  readonly guid: Uint8Array;
  /** The 16 bytes in wire order, grouped 8-4-4-4-12; firmwares disagree on field byte order, so none is swapped. */
  readonly text: string;
}

/** Option 97 (RFC 4578): type 0 followed by a 16-byte GUID. */
export function clientMachineId(p: DhcpPacket): ClientMachineId | undefined {
  const d = fixed(p, Opt.clientMachineId, 17);
  if (!d) return undefined;
  const h = hex(d.subarray(1));
  const text = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  return { type: d[0]!, guid: d.slice(1), text };
}

/** Option 175: iPXE's feature flags and build information, as encapsulated sub-options. */
export function ipxeOptions(p: DhcpPacket): SubOption[] | undefined {
  const d = getOption(p, Opt.ipxeEncap);
  return d && parseSubOptions(d, true);
}
