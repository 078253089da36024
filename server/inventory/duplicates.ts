import { RackseedError } from '../model/errors.js';
import { describeEntry, type LocatedSpec } from './entries.js';
import { isIpv4 } from '../model/ipv4.js';

interface Use {
  entry: LocatedSpec;
  /** Which field holds the value, when that matters for the message (an IP can be a node's or a BMC's). */
  field: string;
}

function conflict(what: string, value: string, later: Use, earlier: Use): RackseedError {
  const fields = later.field !== earlier.field ? ` (${later.field} of ${later.entry.spec.name}, ${earlier.field} of ${earlier.entry.spec.name})` : '';
  const sameEntry = later.entry === earlier.entry;
  const message = sameEntry
    ? `${describeEntry(later.entry)} lists ${what} ${value} twice`
    : `${describeEntry(later.entry)} and ${describeEntry(earlier.entry)} both ${what === 'name' ? 'declare node' : `use ${what}`} ${value}${fields}`;
  const side = (u: Use) => ({ name: u.entry.spec.name, file: u.entry.spec.origin.file, line: u.entry.spec.origin.line, index: u.entry.index, ...(u.entry.csv ? { csv: u.entry.csv } : {}) });
  return new RackseedError('INVENTORY_DUPLICATE', message, { kind: what, value, entries: [side(later), side(earlier)] });
}

/**
 * Node names, MACs and IP addresses must each be unique: two nodes with one MAC would race for the same
 * DHCP lease and boot script. Names compare case-insensitively, as DNS does. BMC addresses share the IP
 * pool with node addresses, since a collision between them is just as broken on the wire; BMC host names are unique
 * among themselves (power actions on one node would reach the other's machine).
 */
export function checkDuplicates(entries: readonly LocatedSpec[]): void {
  const names = new Map<string, Use>();
  const macs = new Map<string, Use>();
  const ips = new Map<string, Use>();
  const bmcHosts = new Map<string, Use>();
  const claim = (seen: Map<string, Use>, key: string, what: string, value: string, use: Use) => {
    const earlier = seen.get(key);
    if (earlier) throw conflict(what, value, use, earlier);
    seen.set(key, use);
  };
  for (const entry of entries) {
    const { spec } = entry;
    claim(names, spec.name.toLowerCase(), 'name', spec.name, { entry, field: 'name' });
    for (const mac of spec.macs) claim(macs, mac, 'MAC', mac, { entry, field: 'mac' });
    if (spec.ip !== undefined) claim(ips, spec.ip, 'IP', spec.ip, { entry, field: 'ip' });
    if (spec.bmc && isIpv4(spec.bmc.address)) claim(ips, spec.bmc.address, 'IP', spec.bmc.address, { entry, field: 'bmc.address' });
    // A BMC named by host name: two nodes with one BMC would power each other off (names compare as DNS does).
    else if (spec.bmc) claim(bmcHosts, spec.bmc.address.toLowerCase().replace(/\.$/, ''), 'BMC', spec.bmc.address, { entry, field: 'bmc.address' });
  }
}
