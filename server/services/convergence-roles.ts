import type { Inventory, ResolvedNode } from '../model/inventory.js';
import { rolesPlayed } from '../model/k3s-role.js';

/**
 * Which nodes an inventory change re-configures: those in both versions whose roles or group differ (a group brings
 * its own data and states). Roles are compared in order, because the order decides which states run first. Nodes
 * that appear or vanish are not here: a new node is not installed yet, a removed one is no longer rackseed's.
 *
 * Pure.
 */
export interface RoleChange {
  node: string;
  before: { group: string; roles: string[] };
  after: { group: string; roles: string[] };
}

/** The part of a node that decides what it is configured as. */
export interface NodeRoleView {
  group: string;
  roles: string[];
}

/** The roles a node plays (a plain `k3s` node's k3s.role included: changing it is a role change). */
export function roleView(node: Pick<ResolvedNode, 'group' | 'roles' | 'data'>): NodeRoleView {
  return { group: node.group, roles: rolesPlayed(node) };
}

/** A snapshot of every node's roles, kept between inventory versions. */
export function roleSnapshot(inv: Inventory): Map<string, NodeRoleView> {
  return new Map([...inv.nodes.values()].map((n) => [n.name, roleView(n)]));
}

/** The `configuredAs` an apply run's summary records, if it is there and well formed (runs of older versions lack it). */
export function configuredAsOf(summary: Record<string, unknown>): NodeRoleView | undefined {
  const v = summary['configuredAs'] as { group?: unknown; roles?: unknown } | undefined;
  if (!v || typeof v.group !== 'string' || !Array.isArray(v.roles) || !v.roles.every((r): r is string => typeof r === 'string')) return undefined;
  return { group: v.group, roles: v.roles };
}

export function sameRoles(a: NodeRoleView, b: NodeRoleView): boolean {
  return a.group === b.group && a.roles.length === b.roles.length && a.roles.every((r, i) => r === b.roles[i]);
}

export function roleChanges(before: ReadonlyMap<string, NodeRoleView>, after: ReadonlyMap<string, NodeRoleView>): RoleChange[] {
  const changes: RoleChange[] = [];
  for (const [name, next] of after) {
    const prev = before.get(name);
    if (prev && !sameRoles(prev, next)) changes.push({ node: name, before: prev, after: next });
  }
  return changes.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
}

/**
 * Nodes whose configuration is rendered from `changed`'s hardware facts: every Slurm node carries one slurm.conf
 * with each compute node's CPUs, memory and GPUs, so when a compute node's hardware is first seen or changes, the
 * other Slurm nodes must render it again. Other roles read no other node's facts.
 */
export function peersRenderingHardwareOf(inv: Inventory, changed: string): string[] {
  const node = inv.nodes.get(changed);
  if (!node || !node.roles.includes('slurm-compute')) return [];
  return [...inv.nodes.values()].filter((n) => n.name !== changed && n.roles.some((r) => r.startsWith('slurm-'))).map((n) => n.name);
}

/** Role families whose every member renders a file from the whole membership: slurm.conf, K3s's init server. */
const MEMBERSHIP_FAMILIES: ReadonlyArray<(role: string) => boolean> = [(r) => r.startsWith('slurm-'), (r) => r === 'k3s' || r.startsWith('k3s-')];

/**
 * Nodes to re-converge because a family's membership changed between two inventory versions: a node joined or left
 * slurm-compute (or a controller changed, or a node with such a role left the inventory), and every remaining Slurm
 * node must render slurm.conf again; likewise K3s nodes for the init server their agents connect to. The nodes
 * whose own roles changed are re-converged anyway and are left out. A node new to the inventory is not a change yet:
 * it joins once installed, when its hardware is first seen (peersRenderingHardwareOf).
 */
export function membershipPeers(before: ReadonlyMap<string, NodeRoleView>, after: ReadonlyMap<string, NodeRoleView>): string[] {
  const peers = new Set<string>();
  const changedRoles = new Set(roleChanges(before, after).map((c) => c.node));
  for (const inFamily of MEMBERSHIP_FAMILIES) {
    const members = (view: NodeRoleView | undefined) => (view?.roles ?? []).filter(inFamily).join(',');
    const changed = [...before.keys()].some((name) => after.has(name) ? members(before.get(name)) !== members(after.get(name)) : members(before.get(name)) !== '');
    if (!changed) continue;
    for (const [name, view] of after) if (members(view) !== '' && !changedRoles.has(name)) peers.add(name);
  }
  return [...peers].sort();
}
