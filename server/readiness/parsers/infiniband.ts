/**
 * Pure parsers for InfiniBand port status, from either of two sources:
 *   - `ibstat` text (infiniband-diags): `CA 'mlx5_0'` blocks with `Port N:` sections
 *   - the sysfs dump the readiness command prints, one line per port:
 *       <device>|<port>|<state>|<phys_state>|<rate>|<link_layer>
 *     with the raw sysfs strings, e.g. `mlx5_0|1|4: ACTIVE|5: LinkUp|400 Gb/sec (4X NDR)|InfiniBand`
 */

export interface IbPort {
  device: string;
  port: number;
  /** Normalised: 'Active', 'Down', 'Init', 'Armed', ... */
  state: string;
  /** Normalised: 'LinkUp', 'Disabled', 'Polling', ... */
  physState: string;
  /** Gb/s; undefined when the rate could not be read. */
  rateGbps?: number;
  linkLayer?: string;
}

/** sysfs state strings carry a numeric prefix ('4: ACTIVE'); ibstat spells them 'Active'. One spelling for both. */
function normaliseState(s: string): string {
  const word = s.replace(/^\d+:\s*/, '').trim();
  const lower = word.toLowerCase();
  if (lower === 'active') return 'Active';
  if (lower === 'down') return 'Down';
  if (lower === 'init') return 'Init';
  if (lower === 'armed') return 'Armed';
  if (lower === 'linkup') return 'LinkUp';
  if (lower === 'polling') return 'Polling';
  if (lower === 'disabled') return 'Disabled';
  return word;
}

/** '400 Gb/sec (4X NDR)' or '400' -> 400. */
function parseRate(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)/.exec(s.trim());
  return m ? Number(m[1]) : undefined;
}

export function parseIbstat(text: string): IbPort[] {
  const ports: IbPort[] = [];
  let device: string | undefined;
  let current: IbPort | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const ca = /^CA '([^']+)'/.exec(line);
    if (ca) {
      device = ca[1];
      current = undefined;
      continue;
    }
    const port = /^Port (\d+):$/.exec(line);
    if (port && device !== undefined) {
      current = { device, port: Number(port[1]), state: 'unknown', physState: 'unknown' };
      ports.push(current);
      continue;
    }
    if (!current) continue;
    const kv = /^([A-Za-z ]+):\s*(.*)$/.exec(line);
    if (!kv) continue;
    const [, key, val] = kv as unknown as [string, string, string];
    if (key === 'State') current.state = normaliseState(val);
    else if (key === 'Physical state') current.physState = normaliseState(val);
    else if (key === 'Rate') {
      const rate = parseRate(val);
      if (rate !== undefined) current.rateGbps = rate;
    } else if (key === 'Link layer') current.linkLayer = val;
  }
  return ports;
}

export function parseSysfsPortDump(text: string): IbPort[] {
  const ports: IbPort[] = [];
  for (const raw of text.split('\n')) {
    const parts = raw.split('|');
    if (parts.length < 5) continue;
    const [device, port, state, phys, rate, linkLayer] = parts.map((p) => p.trim());
    if (!device || !/^\d+$/.test(port ?? '')) continue;
    const p: IbPort = { device, port: Number(port), state: normaliseState(state ?? ''), physState: normaliseState(phys ?? '') };
    const r = parseRate(rate ?? '');
    if (r !== undefined) p.rateGbps = r;
    if (linkLayer) p.linkLayer = linkLayer;
    ports.push(p);
  }
  return ports;
}

/** Either source: ibstat output starts its blocks with `CA '...'`. */
export function parseIbPorts(text: string): IbPort[] {
  return /^CA '/m.test(text) ? parseIbstat(text) : parseSysfsPortDump(text);
}

/** The one-exec collection command that prints the sysfs dump parseSysfsPortDump reads. */
export const SYSFS_PORT_DUMP_COMMAND = [
  'for p in /sys/class/infiniband/*/ports/*; do',
  '[ -d "$p" ] || continue; d=${p%/ports/*};',
  `printf '%s|%s|%s|%s|%s|%s\\n' "\${d##*/}" "\${p##*/}" "$(cat "$p/state" 2>/dev/null)" "$(cat "$p/phys_state" 2>/dev/null)" "$(cat "$p/rate" 2>/dev/null)" "$(cat "$p/link_layer" 2>/dev/null)";`,
  'done',
].join(' ');
