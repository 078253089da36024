/**
 * IPv4 addresses as the inventory writes them: dotted quads only. Leading zeros are rejected because tools
 * disagree on whether 010 is octal (8) or decimal (10), and a node must get the address the operator meant.
 */
const OCTET = /^(0|[1-9]\d{0,2})$/;

export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value;
}

export function isIpv4(text: string): boolean {
  return parseIpv4(text) !== undefined;
}

/**
 * A peer's address as an operator reads it: Node's dual-stack sockets report an IPv4 peer as `::ffff:10.0.0.5`,
 * which matches no inventory address. Anything else (a real IPv6 address, a name) comes back unchanged.
 */
export function plainAddress(address: string): string {
  const mapped = /^::ffff:(.+)$/i.exec(address)?.[1];
  return mapped !== undefined && isIpv4(mapped) ? mapped : address;
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** The address `offset` after `start`, or undefined when it would run past 255.255.255.255. */
export function addToIpv4(start: string, offset: number): string | undefined {
  const base = parseIpv4(start);
  if (base === undefined) return undefined;
  const value = base + offset;
  return value > 0xffffffff ? undefined : formatIpv4(value);
}

export interface Ipv4Subnet {
  /** Network address as a number. */
  network: number;
  prefix: number;
  /** The mask as a number (0xffffff00 for /24). */
  mask: number;
}

/** "10.0.0.0/24" -> the subnet; undefined for a malformed prefix or host bits set in the network address. */
export function parseCidr(text: string): Ipv4Subnet | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text);
  if (!m) return undefined;
  const network = parseIpv4(m[1]!);
  const prefix = Number(m[2]);
  if (network === undefined || prefix > 32) return undefined;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if ((network & ~mask) >>> 0 !== 0) return undefined;
  return { network, prefix, mask };
}

export function inSubnet(address: number, subnet: Ipv4Subnet): boolean {
  return ((address & subnet.mask) >>> 0) === subnet.network;
}

/** An address a DHCP server never hands out in a subnet, what it is, and its text. */
export interface NeverLeased {
  ip: number;
  what: 'server' | 'router' | 'network' | 'broadcast';
  address: string;
}

/**
 * The addresses of a subnet no DHCP client may be given, whether a pool holds them or a reservation names them: the
 * DHCP server's, the routers', and the network and broadcast addresses (none for /31 and /32, RFC 3021). A client
 * uses what it is offered without checking for a conflict (PXE ROMs never do).
 */
export function addressesNeverLeased(subnet: Ipv4Subnet, server: string | undefined, routers: readonly string[]): NeverLeased[] {
  const out: NeverLeased[] = [];
  const add = (ip: number | undefined, what: NeverLeased['what'], address: string) => {
    if (ip !== undefined) out.push({ ip, what, address });
  };
  if (server !== undefined) add(parseIpv4(server), 'server', server);
  for (const r of routers) add(parseIpv4(r), 'router', r);
  if (subnet.prefix <= 30) {
    const broadcast = (subnet.network | ~subnet.mask) >>> 0;
    add(subnet.network, 'network', formatIpv4(subnet.network));
    add(broadcast, 'broadcast', formatIpv4(broadcast));
  }
  return out;
}
