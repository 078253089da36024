import { RackseedError } from '../../model/errors.js';
import { concatBytes, ipv4FromBytes, macFromBytes, parseIpv4, readU16, readU32 } from './bytes.js';
import {
  CHADDR_LEN,
  FILE_LEN,
  HEADER_LEN,
  HTYPE_ETHERNET,
  MAGIC_COOKIE,
  OFFSET,
  OPT_END,
  OPT_OVERLOAD,
  OPT_PAD,
  OVERLOAD_FILE,
  OVERLOAD_SNAME,
  SNAME_LEN,
  type DhcpOption,
  type DhcpPacket,
  type OptionArea,
} from './packet.js';

/**
 * Wire format <-> DhcpPacket. decode() is the only entry point for bytes from the network, so it is total:
 * any input yields a packet or a typed error, never an exception. encode() is literal: it writes exactly the
 * option instances, pads, ends and trailers it is given, which is what makes the round trip byte-identical.
 */

export type DhcpDecodeErrorCode =
  | 'TOO_SHORT'
  | 'BAD_MAGIC'
  | 'BAD_OP'
  | 'BAD_HLEN'
  | 'TRUNCATED_OPTION'
  | 'BAD_OVERLOAD';

export interface DhcpDecodeError {
  readonly code: DhcpDecodeErrorCode;
  readonly message: string;
}

export type DecodeResult = { ok: true; packet: DhcpPacket } | { ok: false; error: DhcpDecodeError };

interface AreaParse {
  options: DhcpOption[];
  trailer: Uint8Array;
}

const fail = (code: DhcpDecodeErrorCode, message: string): DecodeResult => ({ ok: false, error: { code, message } });

/** Parses one option area. A missing End is tolerated (some clients omit it); a length past the area is not. */
function parseArea(bytes: Uint8Array, area: OptionArea): AreaParse | DhcpDecodeError {
  const options: DhcpOption[] = [];
  const empty = new Uint8Array(0);
  let i = 0;
  while (i < bytes.length) {
    const code = bytes[i]!;
    if (code === OPT_PAD) {
      options.push({ code, data: empty, area });
      i += 1;
      continue;
    }
    if (code === OPT_END) {
      options.push({ code, data: empty, area });
      return { options, trailer: bytes.slice(i + 1) };
    }
    if (i + 1 >= bytes.length) {
      return { code: 'TRUNCATED_OPTION', message: `option ${code} in ${area} at offset ${i} has no length byte` };
    }
    const len = bytes[i + 1]!;
    if (i + 2 + len > bytes.length) {
      return {
        code: 'TRUNCATED_OPTION',
        message: `option ${code} in ${area} at offset ${i} claims ${len} bytes, ${bytes.length - i - 2} remain`,
      };
    }
    options.push({ code, data: bytes.slice(i + 2, i + 2 + len), area });
    i += 2 + len;
  }
  return { options, trailer: empty };
}

function isError(x: AreaParse | DhcpDecodeError): x is DhcpDecodeError {
  return 'code' in x;
}

export function decode(input: Uint8Array): DecodeResult {
  // Copy so the packet never aliases a socket buffer that Node may reuse.
  const buf = Uint8Array.from(input);
  if (buf.length < HEADER_LEN) return fail('TOO_SHORT', `${buf.length} bytes, a DHCP message needs at least ${HEADER_LEN}`);
  for (let i = 0; i < 4; i++) {
    if (buf[OFFSET.magic + i] !== MAGIC_COOKIE[i]) return fail('BAD_MAGIC', 'no DHCP magic cookie (plain BOOTP or not DHCP)');
  }
  const op = buf[OFFSET.op]!;
  if (op !== 1 && op !== 2) return fail('BAD_OP', `op ${op} is neither BOOTREQUEST (1) nor BOOTREPLY (2)`);
  const htype = buf[OFFSET.htype]!;
  const hlen = buf[OFFSET.hlen]!;
  if (hlen > CHADDR_LEN) return fail('BAD_HLEN', `hlen ${hlen} exceeds the ${CHADDR_LEN}-byte chaddr field`);

  const sname = buf.slice(OFFSET.sname, OFFSET.sname + SNAME_LEN);
  const file = buf.slice(OFFSET.file, OFFSET.file + FILE_LEN);

  const main = parseArea(buf.subarray(OFFSET.options), 'options');
  if (isError(main)) return { ok: false, error: main };

  const overloads = main.options.filter((o) => o.code === OPT_OVERLOAD);
  let overload = 0;
  if (overloads.length > 1) return fail('BAD_OVERLOAD', 'option 52 appears more than once');
  if (overloads.length === 1) {
    const data = overloads[0]!.data;
    if (data.length !== 1 || data[0]! < 1 || data[0]! > 3) {
      return fail('BAD_OVERLOAD', `option 52 must be one byte 1..3, got ${data.length} byte(s)`);
    }
    overload = data[0]!;
  }

  const options = [...main.options];
  const empty = new Uint8Array(0);
  const trailers: Record<OptionArea, Uint8Array> = { options: main.trailer, file: empty, sname: empty };
  // RFC 2131 section 4.1: 'file' is processed before 'sname'; keeping that order keeps concatenation right.
  for (const [flag, area, bytes] of [
    [OVERLOAD_FILE, 'file', file],
    [OVERLOAD_SNAME, 'sname', sname],
  ] as const) {
    if ((overload & flag) === 0) continue;
    const parsed = parseArea(bytes, area);
    if (isError(parsed)) return { ok: false, error: parsed };
    if (parsed.options.some((o) => o.code === OPT_OVERLOAD)) {
      return fail('BAD_OVERLOAD', `option 52 inside the overloaded ${area} field`);
    }
    options.push(...parsed.options);
    trailers[area] = parsed.trailer;
  }

  const chaddr = buf.slice(OFFSET.chaddr, OFFSET.chaddr + CHADDR_LEN);
  const packet: DhcpPacket = {
    op,
    htype,
    hlen,
    hops: buf[OFFSET.hops]!,
    xid: readU32(buf, OFFSET.xid),
    secs: readU16(buf, OFFSET.secs),
    flags: readU16(buf, OFFSET.flags),
    ciaddr: ipv4FromBytes(buf, OFFSET.ciaddr),
    yiaddr: ipv4FromBytes(buf, OFFSET.yiaddr),
    siaddr: ipv4FromBytes(buf, OFFSET.siaddr),
    giaddr: ipv4FromBytes(buf, OFFSET.giaddr),
    chaddr,
    mac: htype === HTYPE_ETHERNET && hlen === 6 ? macFromBytes(chaddr) : undefined,
    sname,
    file,
    options,
    trailers,
  };
  return { ok: true, packet };
}

/** The overload value the packet's own option 52 declares (0 when absent or malformed). */
export function overloadOf(p: DhcpPacket): number {
  const o = p.options.find((x) => x.code === OPT_OVERLOAD && x.area === 'options');
  const v = o?.data.length === 1 ? o.data[0]! : 0;
  return v >= 1 && v <= 3 ? v : 0;
}

function encodeError(message: string, details: Record<string, unknown> = {}): RackseedError {
  return new RackseedError('DHCP_ENCODE', message, details);
}

/** The bytes of one option area: its instances, pads and End in order, then its trailer. */
export function areaBytes(p: Pick<DhcpPacket, 'options' | 'trailers'>, area: OptionArea): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const o of p.options) {
    if (o.area !== area) continue;
    if (o.code === OPT_PAD || o.code === OPT_END) {
      parts.push(Uint8Array.of(o.code));
      continue;
    }
    if (o.data.length > 255) throw encodeError(`option ${o.code} instance is ${o.data.length} bytes; split it (RFC 3396)`);
    parts.push(Uint8Array.of(o.code, o.data.length), o.data);
  }
  parts.push(p.trailers[area]);
  return concatBytes(parts);
}

function writeFixed(out: Uint8Array, at: number, size: number, value: Uint8Array, what: string): void {
  if (value.length > size) throw encodeError(`${what} is ${value.length} bytes, the field holds ${size}`);
  out.set(value, at);
}

function writeIp(out: Uint8Array, at: number, ip: string, what: string): void {
  const b = parseIpv4(ip);
  if (!b) throw encodeError(`${what} "${ip}" is not an IPv4 address`);
  out.set(b, at);
}

/**
 * Serialises a packet. Throws a RackseedError (DHCP_ENCODE) only for packets no decoder could have produced
 * (an instance over 255 bytes, overloaded options that overflow their field): a programming error, not input.
 */
export function encode(p: DhcpPacket): Uint8Array {
  const main = areaBytes(p, 'options');
  const out = new Uint8Array(HEADER_LEN + main.length);
  const view = new DataView(out.buffer);
  out[OFFSET.op] = p.op;
  out[OFFSET.htype] = p.htype;
  out[OFFSET.hlen] = p.hlen;
  out[OFFSET.hops] = p.hops;
  view.setUint32(OFFSET.xid, p.xid >>> 0);
  view.setUint16(OFFSET.secs, p.secs);
  view.setUint16(OFFSET.flags, p.flags);
  writeIp(out, OFFSET.ciaddr, p.ciaddr, 'ciaddr');
  writeIp(out, OFFSET.yiaddr, p.yiaddr, 'yiaddr');
  writeIp(out, OFFSET.siaddr, p.siaddr, 'siaddr');
  writeIp(out, OFFSET.giaddr, p.giaddr, 'giaddr');
  writeFixed(out, OFFSET.chaddr, CHADDR_LEN, p.chaddr, 'chaddr');

  const overload = overloadOf(p);
  const stray = p.options.find(
    (o) => (o.area === 'file' && !(overload & OVERLOAD_FILE)) || (o.area === 'sname' && !(overload & OVERLOAD_SNAME)),
  );
  if (stray) throw encodeError(`option ${stray.code} is placed in ${stray.area} but option 52 does not overload it`);
  writeFixed(out, OFFSET.sname, SNAME_LEN, overload & OVERLOAD_SNAME ? areaBytes(p, 'sname') : p.sname, 'sname');
  writeFixed(out, OFFSET.file, FILE_LEN, overload & OVERLOAD_FILE ? areaBytes(p, 'file') : p.file, 'file');
  out.set(MAGIC_COOKIE, OFFSET.magic);
  out.set(main, OFFSET.options);
  return out;
}
