import { RackseedError } from './errors.js';

/** A MAC address in canonical form: six lower-case hex pairs joined by colons. */
export type Mac = string & { readonly __brand: 'Mac' };

const SEPARATED = /^([0-9a-f]{1,2})([:-])([0-9a-f]{1,2})\2([0-9a-f]{1,2})\2([0-9a-f]{1,2})\2([0-9a-f]{1,2})\2([0-9a-f]{1,2})$/i;
const CISCO = /^([0-9a-f]{4})\.([0-9a-f]{4})\.([0-9a-f]{4})$/i;
const BARE = /^[0-9a-f]{12}$/i;

/**
 * Accepts the usual spellings (aa:bb:.., AA-BB-.., aabb.ccdd.eeff, aabbccddeeff, single-digit octets
 * such as iPXE never prints but dhcpd logs do) and returns the canonical form, or undefined.
 */
export function parseMac(input: string): Mac | undefined {
  const s = input.trim();
  let hex: string | undefined;
  const sep = SEPARATED.exec(s);
  if (sep) {
    hex = [sep[1], sep[3], sep[4], sep[5], sep[6], sep[7]].map((o) => o!.padStart(2, '0')).join('');
  } else if (CISCO.test(s)) {
    hex = s.replace(/\./g, '');
  } else if (BARE.test(s)) {
    hex = s;
  }
  if (hex === undefined) return undefined;
  hex = hex.toLowerCase();
  return hex.match(/../g)!.join(':') as Mac;
}

/**
 * Why `mac` cannot be a network card's own address, or undefined: a group (multicast) address, broadcast among them,
 * has the low bit of its first octet set, and no card has the all-zero address. Such a MAC in the inventory is a typo
 * that DHCP can never match (while it still holds a reserved address).
 */
export function nicMacProblem(mac: Mac): string | undefined {
  if (mac === '00:00:00:00:00:00') return 'is all zeros, which no network card has';
  if (mac === 'ff:ff:ff:ff:ff:ff') return 'is the broadcast address, not a network card\'s';
  if (parseInt(mac.slice(0, 2), 16) & 1) return 'is a multicast address (odd first octet), not a network card\'s';
  return undefined;
}

/** Like parseMac for a machine's own address, but throws a typed error naming where the bad value came from. */
export function normalizeMac(input: string, where = 'value'): Mac {
  const mac = parseMac(input);
  if (!mac) {
    throw new RackseedError('MAC_INVALID', `${where}: "${input}" is not a MAC address (expected e.g. 52:54:00:12:34:56)`, {
      where,
      value: input,
    });
  }
  const problem = nicMacProblem(mac);
  if (problem) throw new RackseedError('MAC_INVALID', `${where}: "${input}" ${problem}`, { where, value: input });
  return mac;
}
