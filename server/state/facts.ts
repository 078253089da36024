import type { NodeFacts, OsFamily } from './types.js';

/**
 * Fact collection in one round trip: a POSIX sh script prints each source in its own section, and a pure parser
 * turns the output into NodeFacts. A missing tool (no nvidia-smi, no ip) only leaves its section empty.
 */

const MARK = '@@rackseed-facts';

/** Section names in the order the script prints them. */
export const FACT_SECTIONS = ['os-release', 'uname', 'hostname', 'nproc', 'meminfo', 'gpus', 'links', 'addrs'] as const;
type Section = (typeof FACT_SECTIONS)[number];

export const FACTS_SCRIPT = `
s() { printf '\\n${MARK} %s@@\\n' "$1"; }
s os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
s uname; uname -r; uname -m
s hostname; uname -n
s nproc; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
s meminfo; grep '^MemTotal:' /proc/meminfo 2>/dev/null
s gpus; if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits 2>/dev/null; fi
s links; for d in /sys/class/net/*; do [ -e "$d" ] || continue; printf '%s|%s|%s|%s\\n' "\${d##*/}" "$(cat "$d/address" 2>/dev/null)" "$(cat "$d/operstate" 2>/dev/null)" "$(cat "$d/type" 2>/dev/null)"; done
s addrs; ip -o addr show 2>/dev/null
s end
exit 0
`;

/** ARPHRD_LOOPBACK in /sys/class/net/<if>/type. */
const LOOPBACK_TYPE = '772';

function sections(stdout: string): Map<Section, string[]> {
  const out = new Map<Section, string[]>();
  let current: string[] | undefined;
  for (const line of stdout.split('\n')) {
    const m = /^@@rackseed-facts ([a-z-]+)@@$/.exec(line);
    if (m) {
      current = (FACT_SECTIONS as readonly string[]).includes(m[1]!) ? [] : undefined;
      if (current) out.set(m[1] as Section, current);
      continue;
    }
    if (current && line.trim() !== '') current.push(line);
  }
  return out;
}

/** KEY=value lines with shell quoting, as os-release(5) defines them. */
export function parseOsRelease(lines: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let value = m[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) {
      value = value.slice(1, -1);
      if (quote === '"') value = value.replace(/\\(["\\$`])/g, '$1');
    }
    out[m[1]!] = value;
  }
  return out;
}

const DEBIAN_LIKE = new Set(['debian', 'ubuntu', 'raspbian', 'linuxmint', 'pop']);
const REDHAT_LIKE = new Set(['rhel', 'centos', 'fedora', 'rocky', 'almalinux', 'ol', 'amzn', 'scientific']);

export function osFamilyOf(id: string, idLike: string): OsFamily {
  const ids = [id, ...idLike.split(/\s+/)].map((s) => s.toLowerCase()).filter(Boolean);
  if (ids.some((i) => DEBIAN_LIKE.has(i))) return 'debian';
  if (ids.some((i) => REDHAT_LIKE.has(i))) return 'redhat';
  return 'unknown';
}

/** `nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits` lines. */
export function parseNvidiaSmiCsv(lines: readonly string[]): NodeFacts['gpus'] {
  const gpus: NodeFacts['gpus'] = [];
  for (const line of lines) {
    // Names have no commas; split from the right anyway so only the two numeric-ish fields are fixed.
    const parts = line.split(',').map((p) => p.trim());
    if (parts.length < 3) continue;
    const driver = parts.pop()!;
    const memory = parseInt(parts.pop()!, 10);
    const model = parts.join(', ');
    if (!model || !Number.isFinite(memory)) continue;
    gpus.push({ model, memoryMiB: memory, ...(driver && !/^\[?N\/A\]?$/i.test(driver) ? { driver } : {}) });
  }
  return gpus;
}

/** `ip -o addr show` lines -> interface name -> addresses (without prefix length), in output order. */
export function parseIpAddr(lines: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of lines) {
    const m = /^\d+:\s+(\S+?)(?:@\S+)?\s+inet6?\s+([0-9a-fA-F.:]+)(?:\/\d+)?\s/.exec(line);
    if (!m) continue;
    const list = out.get(m[1]!) ?? [];
    list.push(m[2]!);
    out.set(m[1]!, list);
  }
  return out;
}

function firstInt(lines: readonly string[] | undefined): number {
  const n = parseInt(lines?.[0]?.trim() ?? '', 10);
  return Number.isFinite(n) ? n : 0;
}

/** Parses FACTS_SCRIPT's output. Unknown or missing values become 'unknown' / 0 / [] rather than errors. */
export function parseFacts(stdout: string): NodeFacts {
  const s = sections(stdout);
  const os = parseOsRelease(s.get('os-release') ?? []);
  const osId = os['ID'] ?? 'unknown';
  const uname = s.get('uname') ?? [];
  const mem = /^MemTotal:\s+(\d+)\s*kB/i.exec(s.get('meminfo')?.[0] ?? '');
  const addresses = parseIpAddr(s.get('addrs') ?? []);
  const nics: NodeFacts['nics'] = [];
  for (const line of s.get('links') ?? []) {
    const [name, mac, state, type] = line.split('|');
    if (!name || type === LOOPBACK_TYPE) continue;
    nics.push({ name, mac: (mac ?? '').toLowerCase(), addresses: addresses.get(name) ?? [], state: state || 'unknown' });
  }
  return {
    osFamily: osFamilyOf(osId, os['ID_LIKE'] ?? ''),
    osId,
    osRelease: os['VERSION_ID'] ?? '',
    kernel: uname[0]?.trim() ?? '',
    arch: uname[1]?.trim() ?? '',
    cpus: firstInt(s.get('nproc')),
    memoryMiB: mem ? Math.floor(Number(mem[1]) / 1024) : 0,
    hostname: s.get('hostname')?.[0]?.trim() ?? '',
    gpus: parseNvidiaSmiCsv(s.get('gpus') ?? []),
    nics,
  };
}
