import { RackseedError } from '../model/errors.js';
import { parseMac } from '../model/mac.js';
import type { Group, Inventory, NodeSpec, ResolvedNode } from '../model/inventory.js';
import { compressHostlist, expandHostlist } from './hostlist.js';

export function matchesSelector(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * The group whose selector matches the labels most specifically (most selector keys). Ties go to the
 * alphabetically first group name, so the answer never depends on the order groups are written in.
 * An empty selector (`{}`) matches everything and therefore only wins when nothing more specific does; a group
 * without a selector is never chosen (a node added without a group must not become, say, a Slurm controller).
 */
export function selectGroup(labels: Record<string, string>, groups: Iterable<Group>): Group | undefined {
  let best: (Group & { selector: Record<string, string> }) | undefined;
  for (const g of groups) {
    if (g.selector === undefined || !matchesSelector(g.selector, labels)) continue;
    const candidate = g as Group & { selector: Record<string, string> };
    if (!best) {
      best = candidate;
      continue;
    }
    const a = Object.keys(candidate.selector).length;
    const b = Object.keys(best.selector).length;
    if (a > b || (a === b && g.name < best.name)) best = candidate;
  }
  return best;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; anything else (lists included) from `over` replaces `base`. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/** The group's settings with the node's overrides on top: the node wins, `data` merges deeply. */
export function resolveNode(spec: NodeSpec, group: Group): ResolvedNode {
  const o = spec.overrides;
  const image = o.image ?? group.image;
  return {
    name: spec.name,
    macs: [...spec.macs],
    group: group.name,
    labels: { ...spec.labels },
    roles: [...(o.roles ?? group.roles)],
    kernelArgs: [...(o.kernelArgs ?? group.kernelArgs)],
    hardware: group.hardware,
    installedBoot: group.installedBoot,
    uefiLoader: group.uefiLoader,
    leaseSeconds: group.leaseSeconds,
    data: deepMerge(group.data, o.data ?? {}),
    ...(o.data && Object.keys(o.data).length > 0 ? { ownData: deepMerge({}, o.data) } : {}),
    ...(spec.ip !== undefined ? { ip: spec.ip } : {}),
    ...(spec.bmc ? { bmc: { ...spec.bmc } } : {}),
    ...(spec.rack !== undefined ? { rack: spec.rack } : {}),
    ...(spec.slot !== undefined ? { slot: spec.slot } : {}),
    ...(image !== undefined ? { image } : {}),
    ...(group.disk ? { disk: group.disk } : {}),
  };
}

function notFound(expr: string, why: string): RackseedError {
  return new RackseedError('INVENTORY_NOT_FOUND', `target "${expr}": ${why}`, { target: expr });
}

/** `shown`: the target as the operator wrote it (with its not:), for errors. */
function matchTarget(inv: Inventory, expr: string, byLowerName: Map<string, ResolvedNode>, shown = expr): ResolvedNode[] {
  const nodes = [...inv.nodes.values()];
  if (expr.startsWith('group:')) {
    const name = expr.slice('group:'.length);
    if (!inv.groups.has(name)) throw notFound(shown, `no group "${name}" (groups: ${[...inv.groups.keys()].sort().join(', ') || 'none'})`);
    return nodes.filter((n) => n.group === name);
  }
  if (expr.startsWith('role:')) {
    const role = expr.slice('role:'.length);
    return nodes.filter((n) => n.roles.includes(role));
  }
  const eq = expr.indexOf('=');
  if (eq > 0) {
    const key = expr.slice(0, eq);
    const value = expr.slice(eq + 1);
    return nodes.filter((n) => n.labels[key] === value);
  }
  // A name or a hostlist. Every name must exist: a typo in gpu[01-04] vs gpu[001-004] must not silently
  // shrink the set of machines an operation touches.
  const names = expandHostlist(expr);
  const missing = names.filter((n) => !byLowerName.has(n.toLowerCase()));
  if (missing.length > 0) {
    throw notFound(shown, `no node${missing.length > 1 ? 's' : ''} ${compressHostlist(missing)} in the inventory`);
  }
  return names.map((n) => byLowerName.get(n.toLowerCase())!);
}

/** The prefix of a target whose nodes are taken out of what the other targets select: `group:gpu not:gpu05`. */
export const EXCLUDE_PREFIX = 'not:';

/**
 * CLI targets: node names, hostlists (gpu[001-004]), group:NAME, role:NAME or a label key=value, and `not:` any of
 * these to take nodes out (`group:gpu not:rack=r12`, as clush -x or Salt's `not`; `!` would be bash's history
 * expansion). The union of the others minus the union of the `not:` ones, without duplicates, in inventory order.
 * A target that matches nothing is an error rather than a no-op, a `not:` one too (a typo must not leave in the
 * node it meant to spare), and so is a selection that `not:` empties.
 */
export function resolveTargets(inv: Inventory, exprs: string[]): ResolvedNode[] {
  const byLowerName = new Map([...inv.nodes.values()].map((n) => [n.name.toLowerCase(), n] as const));
  const wanted = new Set<string>();
  const spared = new Set<string>();
  for (const raw of exprs) {
    const trimmed = raw.trim();
    const exclude = trimmed.startsWith(EXCLUDE_PREFIX);
    const expr = exclude ? trimmed.slice(EXCLUDE_PREFIX.length).trim() : trimmed;
    if (expr === '') throw notFound(raw, exclude ? 'not: names no nodes (not:gpu05, not:group:login, not:rack=r12)' : 'empty target');
    if (expr.startsWith(EXCLUDE_PREFIX)) throw notFound(raw, 'not: takes a target, not another not:');
    const matched = matchTarget(inv, expr, byLowerName, trimmed);
    if (matched.length === 0) throw notFound(trimmed, 'matches no node');
    for (const n of matched) (exclude ? spared : wanted).add(n.name);
  }
  if (wanted.size === 0 && spared.size > 0) {
    throw notFound(exprs.join(' '), 'only not: targets: name the nodes to start from too (group:gpu not:gpu05)');
  }
  const selected = [...inv.nodes.values()].filter((n) => wanted.has(n.name) && !spared.has(n.name));
  if (selected.length === 0 && wanted.size > 0) throw notFound(exprs.join(' '), 'the not: targets take out every node the others select');
  return selected;
}

/**
 * The node that owns a MAC (any usual spelling), or undefined. A linear scan: even 10,000 nodes take
 * microseconds, and no index can go stale if a caller builds or changes an inventory by hand.
 */
/** Per-inventory MAC index, built on first use: DHCP asks for every packet, so a scan per lookup will not do. */
const macIndexes = new WeakMap<Inventory, Map<string, ResolvedNode>>();

function macIndex(inv: Inventory): Map<string, ResolvedNode> {
  let index = macIndexes.get(inv);
  if (!index) {
    index = new Map();
    for (const node of inv.nodes.values()) for (const m of node.macs) index.set(m, node);
    macIndexes.set(inv, index);
  }
  return index;
}

export function findNodeByMac(inv: Inventory, mac: string): ResolvedNode | undefined {
  const canonical = parseMac(mac);
  return canonical ? macIndex(inv).get(canonical) : undefined;
}
