import { cString, hex, ipv4FromBytes, latin1, readU16, readU32 } from './bytes.js';
import { overloadOf } from './codec.js';
import { archName } from './arch.js';
import { getOption, messageTypeName, Opt, parseUserClass } from './options.js';
import { OPT_END, OPT_PAD, OVERLOAD_FILE, OVERLOAD_SNAME, HEADER_LEN, type DhcpOption, type DhcpPacket } from './packet.js';
import { parsePxeVendorOptions } from './pxe.js';
import { parseSubOptions } from './suboptions.js';

/**
 * A stable, line-oriented text form of a packet for golden files and logs: one field or option instance per
 * line, decoded where the option is known, raw hex otherwise. Changing this format rewrites every golden file,
 * so add lines rather than reshaping existing ones.
 */

const NAMES: Record<number, string> = {
  1: 'subnet-mask',
  3: 'router',
  6: 'dns-servers',
  12: 'host-name',
  15: 'domain-name',
  26: 'interface-mtu',
  28: 'broadcast-address',
  42: 'ntp-servers',
  43: 'vendor-specific',
  50: 'requested-ip',
  51: 'lease-time',
  52: 'overload',
  53: 'message-type',
  54: 'server-id',
  55: 'parameter-request-list',
  56: 'message',
  57: 'max-message-size',
  58: 'renewal-time',
  59: 'rebinding-time',
  60: 'vendor-class-id',
  61: 'client-id',
  66: 'tftp-server-name',
  67: 'bootfile-name',
  77: 'user-class',
  80: 'rapid-commit',
  81: 'client-fqdn',
  82: 'relay-agent-info',
  93: 'client-arch',
  94: 'client-ndi',
  97: 'client-machine-id',
  119: 'domain-search',
  121: 'classless-static-routes',
  145: 'forcerenew-nonce',
  175: 'ipxe-encap',
};

const IP_OPTIONS = new Set([1, 28, 50, 54]);
const IP_LIST_OPTIONS = new Set([3, 6, 42]);
const SECONDS_OPTIONS = new Set([51, 58, 59]);
const STRING_OPTIONS = new Set([12, 15, 56, 60, 66, 67]);

export function optionName(code: number): string {
  return NAMES[code] ?? `option-${code}`;
}

const q = (s: string): string => JSON.stringify(s);

function subList(d: Uint8Array, padEnd: boolean): string | undefined {
  const subs = parseSubOptions(d, padEnd);
  return subs && subs.map((s) => `${s.code}=${hex(s.data)}`).join(' ');
}

function describePxe(d: Uint8Array): string | undefined {
  const pxe = parsePxeVendorOptions(d);
  if (!pxe) return undefined;
  const parts: string[] = [];
  for (const s of pxe.subOptions) {
    if (s.code === 6 && pxe.discoveryControl !== undefined) parts.push(`discovery-control=${pxe.discoveryControl}`);
    else if (s.code === 8 && pxe.bootServers) {
      parts.push(`boot-servers=${pxe.bootServers.map((b) => `${b.type}:${b.addresses.join(',')}`).join(';')}`);
    } else if (s.code === 9 && pxe.bootMenu) parts.push(`boot-menu=${pxe.bootMenu.map((m) => `${m.type}:${q(m.description)}`).join(';')}`);
    else if (s.code === 10 && pxe.menuPrompt) parts.push(`menu-prompt=${pxe.menuPrompt.timeout}:${q(pxe.menuPrompt.prompt)}`);
    else if (s.code === 71 && pxe.bootItem) parts.push(`boot-item=${pxe.bootItem.type}:${pxe.bootItem.layer}`);
    else parts.push(`${s.code}=${hex(s.data)}`);
  }
  return `pxe ${parts.join(' ')}`;
}

/** The decoded value of one option's (concatenated) data, or undefined when it does not parse as that option. */
export function describeOption(code: number, d: Uint8Array): string | undefined {
  if (IP_OPTIONS.has(code)) return d.length === 4 ? ipv4FromBytes(d) : undefined;
  if (IP_LIST_OPTIONS.has(code)) {
    if (d.length === 0 || d.length % 4 !== 0) return undefined;
    const ips: string[] = [];
    for (let i = 0; i < d.length; i += 4) ips.push(ipv4FromBytes(d, i));
    return ips.join(' ');
  }
  if (SECONDS_OPTIONS.has(code)) return d.length === 4 ? `${readU32(d, 0)}s` : undefined;
  if (STRING_OPTIONS.has(code)) return q(latin1(d));
  switch (code) {
    case Opt.messageType:
      return d.length === 1 ? (messageTypeName(d[0]!) ?? `unknown(${d[0]})`) : undefined;
    case Opt.overload:
      return d.length === 1 ? ['', 'file', 'sname', 'file+sname'][d[0]!] : undefined;
    case Opt.parameterRequestList:
      return [...d].join(' ');
    case Opt.maxMessageSize:
    case 26:
      return d.length === 2 ? String(readU16(d, 0)) : undefined;
    case Opt.clientId:
      return d.length >= 2 ? `type=${d[0]} ${hex(d.subarray(1))}` : undefined;
    case Opt.userClass: {
      const uc = parseUserClass(d);
      return `${uc.format} ${uc.classes.map(q).join(' ')}`;
    }
    case Opt.relayAgentInfo:
      return subList(d, false);
    case Opt.clientArch: {
      if (d.length === 0 || d.length % 2 !== 0) return undefined;
      const archs: string[] = [];
      for (let i = 0; i < d.length; i += 2) archs.push(`${readU16(d, i)} (${archName(readU16(d, i))})`);
      return archs.join(', ');
    }
    case Opt.clientNdi:
      return d.length === 3 ? `type=${d[0]} version=${d[1]}.${d[2]}` : undefined;
    case Opt.clientMachineId: {
      if (d.length !== 17) return undefined;
      const h = hex(d.subarray(1));
      return `type=${d[0]} ${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    case Opt.ipxeEncap:
      return subList(d, true);
    case Opt.vendorSpecific:
      return describePxe(d);
    default:
      return undefined;
  }
}

function valueText(code: number, d: Uint8Array): string {
  const described = describeOption(code, d);
  if (described === undefined) return d.length === 0 ? '(empty)' : `hex ${hex(d)}`;
  return described;
}

/** A fixed header string field: the text up to NUL, plus the rest when it is not all zero. */
function fieldText(raw: Uint8Array): string {
  const end = raw.indexOf(0);
  const rest = end < 0 ? new Uint8Array(0) : raw.subarray(end);
  const junk = rest.some((b) => b !== 0) ? ` (raw ${hex(raw)})` : '';
  return `${q(cString(raw))}${junk}`;
}

function trailerText(t: Uint8Array): string {
  return t.every((b) => b === 0) ? `${t.length} zero bytes` : `${t.length} bytes ${hex(t)}`;
}

function optionLines(options: readonly DhcpOption[]): string[] {
  const counts = new Map<number, number>();
  for (const o of options) counts.set(o.code, (counts.get(o.code) ?? 0) + 1);
  const seen = new Map<number, number>();
  const lines: string[] = [];
  let pads = 0;
  const flushPads = (area: string): void => {
    if (pads > 0) lines.push(`  [${area}] pad x${pads}`);
    pads = 0;
  };
  let lastArea = options[0]?.area ?? 'options';
  for (const o of options) {
    if (o.area !== lastArea) flushPads(lastArea);
    lastArea = o.area;
    if (o.code === OPT_PAD) {
      pads++;
      continue;
    }
    flushPads(o.area);
    if (o.code === OPT_END) {
      lines.push(`  [${o.area}] end`);
      continue;
    }
    const n = counts.get(o.code) ?? 1;
    const k = (seen.get(o.code) ?? 0) + 1;
    seen.set(o.code, k);
    const head = `  [${o.area}] ${o.code} ${optionName(o.code)} len=${o.data.length}`;
    // A fragment of a split option means nothing alone: show its bytes and decode the whole once, below.
    lines.push(n > 1 ? `${head} part ${k}/${n} hex ${hex(o.data)}` : `${head}: ${valueText(o.code, o.data)}`);
  }
  flushPads(lastArea);
  return lines;
}

function mergedLines(p: DhcpPacket): string[] {
  const counts = new Map<number, number>();
  for (const o of p.options) if (o.code !== OPT_PAD && o.code !== OPT_END) counts.set(o.code, (counts.get(o.code) ?? 0) + 1);
  const lines: string[] = [];
  for (const [code, n] of counts) {
    if (n < 2) continue;
    const d = getOption(p, code)!;
    lines.push(`  ${code} ${optionName(code)} len=${d.length} from ${n} parts: ${valueText(code, d)}`);
  }
  return lines;
}

function wireLength(p: DhcpPacket): number {
  let n = HEADER_LEN + p.trailers.options.length;
  for (const o of p.options) if (o.area === 'options') n += o.code === OPT_PAD || o.code === OPT_END ? 1 : 2 + o.data.length;
  return n;
}

export function dumpPacket(p: DhcpPacket): string {
  const overload = overloadOf(p);
  const lines = [
    `length: ${wireLength(p)}`,
    `op: ${p.op} ${p.op === 1 ? 'BOOTREQUEST' : p.op === 2 ? 'BOOTREPLY' : 'unknown'}`,
    `htype: ${p.htype}${p.htype === 1 ? ' ethernet' : ''}`,
    `hlen: ${p.hlen}`,
    `hops: ${p.hops}`,
    `xid: 0x${p.xid.toString(16).padStart(8, '0')}`,
    `secs: ${p.secs}`,
    `flags: 0x${p.flags.toString(16).padStart(4, '0')}${p.flags & 0x8000 ? ' broadcast' : ''}`,
    `ciaddr: ${p.ciaddr}`,
    `yiaddr: ${p.yiaddr}`,
    `siaddr: ${p.siaddr}`,
    `giaddr: ${p.giaddr}`,
    `chaddr: ${hex(p.chaddr)}`,
    `mac: ${p.mac ?? '(none)'}`,
    `sname: ${overload & OVERLOAD_SNAME ? '(overloaded: options)' : fieldText(p.sname)}`,
    `file: ${overload & OVERLOAD_FILE ? '(overloaded: options)' : fieldText(p.file)}`,
    'options:',
    ...optionLines(p.options),
  ];
  const merged = mergedLines(p);
  if (merged.length > 0) lines.push('merged (RFC 3396):', ...merged);
  for (const area of ['options', 'file', 'sname'] as const) {
    const t = p.trailers[area];
    if (t.length > 0) lines.push(`trailer [${area}]: ${trailerText(t)}`);
  }
  return `${lines.join('\n')}\n`;
}
