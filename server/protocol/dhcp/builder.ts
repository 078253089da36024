import { RackseedError } from '../../model/errors.js';
import { fromLatin1, macFromBytes } from './bytes.js';
import { areaBytes } from './codec.js';
import { Opt } from './options.js';
import {
  CHADDR_LEN,
  FILE_LEN,
  HEADER_LEN,
  HTYPE_ETHERNET,
  OPT_END,
  OPT_OVERLOAD,
  OVERLOAD_FILE,
  OVERLOAD_SNAME,
  SNAME_LEN,
  type DhcpOption,
  type DhcpPacket,
  type Ipv4,
  type OptionArea,
} from './packet.js';

/**
 * Turns a field/option description into a DhcpPacket with a deterministic layout, so the same reply is always
 * the same bytes (golden files, and diffs of captured traffic, depend on that).
 */

/**
 * RFC 951 fixed the BOOTP message at 300 bytes (a 64-byte vendor area) and RFC 1542 section 2.1 notes that
 * relay agents and old clients may drop anything shorter; every mainstream server pads to it.
 */
export const BOOTP_MIN_LEN = 300;

/**
 * RFC 2131 section 2: a client must accept a 576-byte IP datagram, i.e. 576 - 20 (IP) - 8 (UDP) = 548 bytes of
 * DHCP message. Option 57 counts the same way (ISC dhcpd and Kea also subtract the headers).
 */
export const DEFAULT_MAX_MESSAGE_SIZE = 576;
const IP_UDP_HEADERS = 28;

export interface PacketSpec {
  readonly op: number;
  readonly htype?: number;
  readonly hlen?: number;
  readonly hops?: number;
  readonly xid: number;
  readonly secs?: number;
  readonly flags?: number;
  readonly ciaddr?: Ipv4;
  readonly yiaddr?: Ipv4;
  readonly siaddr?: Ipv4;
  readonly giaddr?: Ipv4;
  /** Up to 16 bytes, zero-filled. */
  readonly chaddr: Uint8Array;
  readonly sname?: string;
  readonly file?: string;
  /** Option code -> full data (any length: longer than 255 is split per RFC 3396). Order is decided here. */
  readonly options: ReadonlyMap<number, Uint8Array>;
  /** The peer's option 57, if any; beyond it the builder overloads file/sname when they are free. */
  readonly maxMessageSize?: number;
}

/**
 * 53 first (RFC 2131 section 4.1 expects the message type to be readable early, and picky PXE ROMs only
 * look there), 54 next, then ascending codes, with 82 last: RFC 3046 section 2.1 has relay agent information
 * appended after all other options, and a server echoing it keeps that place.
 */
export function optionOrder(codes: Iterable<number>): number[] {
  const rank = (c: number): number => (c === Opt.messageType ? -3 : c === Opt.serverId ? -2 : c === Opt.relayAgentInfo ? 1000 : c);
  return [...codes].filter((c) => c !== 0 && c !== OPT_END && c !== OPT_OVERLOAD).sort((a, b) => rank(a) - rank(b));
}

function fixedField(s: string | undefined, len: number): Uint8Array {
  const out = new Uint8Array(len);
  if (s !== undefined) out.set(fromLatin1(s).subarray(0, len - 1)); // keep a terminating NUL
  return out;
}

interface Slot {
  readonly area: OptionArea;
  readonly capacity: number;
  used: number;
}

/** Bytes an option takes when split into 255-byte instances (an empty option still needs code + length). */
function encodedSize(len: number): number {
  return len === 0 ? 2 : Math.ceil(len / 255) * 2 + len;
}

/**
 * Lays options out over the slots in RFC 2131 processing order (options, file, sname). An option that fits whole
 * goes into the first slot with room for it: few clients implement RFC 3396 concatenation, so only what cannot
 * fit anywhere is split, forward only. When it cannot fit, the main area takes the whole option beyond the size
 * limit: an oversized reply beats silently dropping an option, and the caller can compare the length with the
 * peer's limit.
 */
function place(order: readonly number[], options: ReadonlyMap<number, Uint8Array>, slots: Slot[]): DhcpOption[] {
  const out: DhcpOption[] = [];
  const main = slots[0]!;
  const fits = (slot: Slot, n: number): boolean => slot.used + n <= slot.capacity;
  for (const code of order) {
    const data = options.get(code)!;
    const whole = data.length <= 255 ? slots.find((slot) => fits(slot, encodedSize(data.length))) : undefined;
    if (whole) {
      out.push({ code, data, area: whole.area });
      whole.used += encodedSize(data.length);
      continue;
    }
    const pieces = splitForward(code, data, slots);
    if (pieces) {
      out.push(...pieces);
      continue;
    }
    for (let at = 0; at === 0 || at < data.length; at += 255) {
      const piece = data.slice(at, at + 255);
      out.push({ code, data: piece, area: main.area });
      main.used += 2 + piece.length;
    }
  }
  return out;
}

/**
 * Splits an option over the room left, its pieces moving only forward through the slots: a receiver joins the pieces
 * of one option in a fixed area order (options, file, sname: RFC 3396 section 5), so a piece placed back in an
 * earlier area would scramble it (an echoed option 82 a relay could no longer parse). Undefined when the forward
 * room is too small; nothing is taken then.
 */
function splitForward(code: number, data: Uint8Array, slots: Slot[]): DhcpOption[] | undefined {
  if (data.length === 0) return undefined;
  const pieces: DhcpOption[] = [];
  const used = slots.map((slot) => slot.used);
  let at = 0;
  for (let i = 0; i < slots.length && at < data.length; i++) {
    const slot = slots[i]!;
    while (at < data.length && slot.capacity - used[i]! >= 3) {
      const take = Math.min(255, slot.capacity - used[i]! - 2, data.length - at);
      pieces.push({ code, data: data.slice(at, at + take), area: slot.area });
      used[i]! += 2 + take;
      at += take;
    }
  }
  if (at < data.length) return undefined;
  slots.forEach((slot, i) => (slot.used = used[i]!));
  return pieces;
}

function layout(order: readonly number[], options: ReadonlyMap<number, Uint8Array>, mainRoom: number, overload: number) {
  const slots: Slot[] = [{ area: 'options', capacity: mainRoom, used: 0 }];
  if (overload & OVERLOAD_FILE) slots.push({ area: 'file', capacity: FILE_LEN - 1, used: 0 });
  if (overload & OVERLOAD_SNAME) slots.push({ area: 'sname', capacity: SNAME_LEN - 1, used: 0 });
  let withOverload = order;
  const sized = new Map(options);
  if (overload) {
    // 52 must sit in the main area: right after 53/54, which are placed first and so never move out of it.
    sized.set(OPT_OVERLOAD, Uint8Array.of(overload));
    const after = order.filter((c) => c === Opt.messageType || c === Opt.serverId).length;
    withOverload = [...order.slice(0, after), OPT_OVERLOAD, ...order.slice(after)];
  }
  const placed = place(withOverload, sized, slots);
  return { placed, overflowed: slots[0]!.used > mainRoom };
}

export function buildPacket(spec: PacketSpec): DhcpPacket {
  if (spec.chaddr.length > CHADDR_LEN) {
    throw new RackseedError('DHCP_ENCODE', `chaddr is ${spec.chaddr.length} bytes (max ${CHADDR_LEN})`);
  }
  const chaddr = new Uint8Array(CHADDR_LEN);
  chaddr.set(spec.chaddr);
  const htype = spec.htype ?? HTYPE_ETHERNET;
  const hlen = spec.hlen ?? Math.min(spec.chaddr.length, CHADDR_LEN);

  const order = optionOrder(spec.options.keys());
  const maxLen = Math.max(DEFAULT_MAX_MESSAGE_SIZE, spec.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE) - IP_UDP_HEADERS;
  const mainRoom = maxLen - HEADER_LEN - 1; // one byte for End

  // Overload only when needed, file before sname: each extra area is one more thing a client must get right.
  let overload = 0;
  let { placed, overflowed } = layout(order, spec.options, mainRoom, overload);
  for (const flag of [OVERLOAD_FILE, OVERLOAD_SNAME]) {
    const free = flag === OVERLOAD_FILE ? !spec.file : !spec.sname;
    if (!overflowed || !free) continue;
    overload |= flag;
    ({ placed, overflowed } = layout(order, spec.options, mainRoom, overload));
  }

  const byArea = (area: OptionArea): DhcpOption[] => placed.filter((o) => o.area === area);
  const end = (area: OptionArea): DhcpOption => ({ code: OPT_END, data: new Uint8Array(0), area });
  const size = (opts: readonly DhcpOption[]): number => opts.reduce((n, o) => n + (o.code === OPT_END ? 1 : 2 + o.data.length), 0);
  const options: DhcpOption[] = [...byArea('options'), end('options')];
  const trailers: Record<OptionArea, Uint8Array> = {
    options: new Uint8Array(Math.max(0, BOOTP_MIN_LEN - HEADER_LEN - size(options))),
    file: new Uint8Array(0),
    sname: new Uint8Array(0),
  };
  for (const [flag, area, len] of [
    [OVERLOAD_FILE, 'file', FILE_LEN],
    [OVERLOAD_SNAME, 'sname', SNAME_LEN],
  ] as const) {
    if (!(overload & flag)) continue;
    const inArea = [...byArea(area), end(area)];
    options.push(...inArea);
    trailers[area] = new Uint8Array(len - size(inArea));
  }

  const packet: DhcpPacket = {
    op: spec.op,
    htype,
    hlen,
    hops: spec.hops ?? 0,
    xid: spec.xid >>> 0,
    secs: spec.secs ?? 0,
    flags: spec.flags ?? 0,
    ciaddr: spec.ciaddr ?? '0.0.0.0',
    yiaddr: spec.yiaddr ?? '0.0.0.0',
    siaddr: spec.siaddr ?? '0.0.0.0',
    giaddr: spec.giaddr ?? '0.0.0.0',
    chaddr,
    mac: htype === HTYPE_ETHERNET && hlen === 6 ? macFromBytes(chaddr) : undefined,
    sname: overload & OVERLOAD_SNAME ? new Uint8Array(SNAME_LEN) : fixedField(spec.sname, SNAME_LEN),
    file: overload & OVERLOAD_FILE ? new Uint8Array(FILE_LEN) : fixedField(spec.file, FILE_LEN),
    options,
    trailers,
  };
  // Mirror the overloaded areas into the raw fields, so a built packet equals its own decode.
  return {
    ...packet,
    sname: overload & OVERLOAD_SNAME ? areaBytes(packet, 'sname') : packet.sname,
    file: overload & OVERLOAD_FILE ? areaBytes(packet, 'file') : packet.file,
  };
}
