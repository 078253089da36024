import type { Mac } from '../../model/mac.js';

/**
 * The DHCP/BOOTP message as data (RFC 2131 section 2, RFC 951). Nothing here touches a socket: the listener
 * decodes bytes into this shape, the pure decision code reads it, and the reply builders produce another one.
 */

/** Dotted-quad IPv4 address ("0.0.0.0" when a field is unset). */
export type Ipv4 = string;

/**
 * Where an option instance sits. RFC 2131 option 52 lets a sender spill options into the `file` and `sname`
 * header fields; the area is kept so a packet re-encodes to the same bytes.
 */
export type OptionArea = 'options' | 'file' | 'sname';

/** Processing order of the areas when instances are concatenated (RFC 3396 section 5, RFC 2131 section 4.1). */
export const AREA_ORDER: readonly OptionArea[] = ['options', 'file', 'sname'];

/**
 * One option instance exactly as it appeared on the wire. Pad (0) and End (255) are kept as instances with
 * empty data, because they are part of the bytes a round trip must reproduce; accessors skip them.
 * A long option split into several instances (RFC 3396) stays split here; `getOption` concatenates.
 */
export interface DhcpOption {
  readonly code: number;
  readonly data: Uint8Array;
  readonly area: OptionArea;
}

export interface DhcpPacket {
  readonly op: number;
  readonly htype: number;
  readonly hlen: number;
  readonly hops: number;
  readonly xid: number;
  readonly secs: number;
  readonly flags: number;
  readonly ciaddr: Ipv4;
  readonly yiaddr: Ipv4;
  readonly siaddr: Ipv4;
  readonly giaddr: Ipv4;
  /** All 16 bytes of the field, including whatever a client left after `hlen`. */
  readonly chaddr: Uint8Array;
  /** Set only for Ethernet (htype 1, hlen 6): anything else has no MAC to key a node on. */
  readonly mac: Mac | undefined;
  /** Raw 64-byte field. When option 52 overloads it, its content is also in `options` (area 'sname'). */
  readonly sname: Uint8Array;
  /** Raw 128-byte field. When option 52 overloads it, its content is also in `options` (area 'file'). */
  readonly file: Uint8Array;
  readonly options: readonly DhcpOption[];
  /**
   * Bytes after the End option of each area. Usually zero padding (clients pad to the 300-byte BOOTP minimum),
   * but kept verbatim whatever they are so that encode(decode(b)) reproduces b.
   */
  readonly trailers: Readonly<Record<OptionArea, Uint8Array>>;
}

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const HTYPE_ETHERNET = 1;
export const FLAG_BROADCAST = 0x8000;

/** RFC 2131 section 3: the four bytes that separate a DHCP message from a plain BOOTP one. */
export const MAGIC_COOKIE: readonly number[] = [99, 130, 83, 99];

/** Offsets of the fixed header (RFC 2131 figure 1). */
export const OFFSET = {
  op: 0,
  htype: 1,
  hlen: 2,
  hops: 3,
  xid: 4,
  secs: 8,
  flags: 10,
  ciaddr: 12,
  yiaddr: 16,
  siaddr: 20,
  giaddr: 24,
  chaddr: 28,
  sname: 44,
  file: 108,
  magic: 236,
  options: 240,
} as const;

export const CHADDR_LEN = 16;
export const SNAME_LEN = 64;
export const FILE_LEN = 128;
/** Fixed header plus magic cookie: the shortest buffer that can be a DHCP message. */
export const HEADER_LEN = OFFSET.options;

export const OPT_PAD = 0;
export const OPT_END = 255;
export const OPT_OVERLOAD = 52;

/** Option 52 values (RFC 2132 section 9.3). */
export const OVERLOAD_FILE = 1;
export const OVERLOAD_SNAME = 2;
