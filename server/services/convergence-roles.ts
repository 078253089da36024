import type { Inventory, ResolvedNode } from '../model/inventory.js';

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

export function roleView(node: Pick<ResolvedNode, 'group' | 'roles'>): NodeRoleView {
  return { group: node.group, roles: [...node.roles] };
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
