import type { Group, Inventory, ResolvedNode } from '../model/inventory.js';
import type { LifecycleState, WipeMode } from '../model/lifecycle.js';
import { LIFECYCLE_STATES } from '../model/lifecycle.js';
import type { NodeStatus } from '../store/types.js';

/** What the API and CLI show for a node: its declaration and what was observed, never secrets. */
export interface NodeView {
  name: string;
  inInventory: boolean;
  group?: string;
  macs: string[];
  ip?: string;
  rack?: string;
  slot?: number;
  /** The group's image: what the node installs next time. */
  image?: string;
  /** What its last install put on the disk (unknown for nodes installed before the server kept track). */
  installedImage?: { name: string; sha256: string };
  roles: string[];
  bmc?: { address: string; kind: string };
  labels: Record<string, string>;
  state: LifecycleState | 'unknown';
  reason?: string;
  stage?: string;
  reimageRequested: boolean;
  /** A wipe is pending or under way, in this mode. */
  wipeRequested?: WipeMode;
  facts: Record<string, unknown>;
  lastSeenAt?: string;
  updatedAt?: string;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function nodeView(node: ResolvedNode | undefined, status: NodeStatus | undefined): NodeView {
  const view: NodeView = {
    name: node?.name ?? status!.id,
    inInventory: node !== undefined,
    macs: node?.macs ?? (status?.mac ? [status.mac] : []),
    roles: node?.roles ?? [],
    labels: node?.labels ?? {},
    state: status?.state ?? 'unknown',
    reimageRequested: status?.reimageRequested ?? false,
    facts: status?.facts ?? {},
  };
  if (node?.group) view.group = node.group;
  if (node?.ip) view.ip = node.ip;
  if (node?.rack) view.rack = node.rack;
  if (node?.slot !== undefined) view.slot = node.slot;
  if (node?.image) view.image = node.image;
  if (status?.wipeRequested) view.wipeRequested = status.wipeRequested;
  if (status?.installedImage) view.installedImage = { ...status.installedImage };
  if (node?.bmc) view.bmc = { address: node.bmc.address, kind: node.bmc.kind };
  if (status?.reason) view.reason = status.reason;
  if (status?.stage) view.stage = status.stage;
  const seen = iso(status?.lastSeenAt);
  if (seen) view.lastSeenAt = seen;
  const updated = iso(status?.updatedAt);
  if (updated) view.updatedAt = updated;
  return view;
}

/** Inventory nodes in inventory order, then machines known only to the store (discovered), by id. */
export function listNodeViews(inv: Inventory, statuses: NodeStatus[]): NodeView[] {
  const byId = new Map(statuses.map((s) => [s.id, s]));
  const views = [...inv.nodes.values()].map((n) => nodeView(n, byId.get(n.name)));
  const extra = statuses.filter((s) => !inv.nodes.has(s.id)).sort((a, b) => a.id.localeCompare(b.id));
  return [...views, ...extra.map((s) => nodeView(undefined, s))];
}

export interface GroupView {
  name: string;
  description?: string;
  image?: string;
  roles: string[];
  kernelArgs: string[];
  /** Absent: the group takes only nodes that name it; `{}`: every node without a group. */
  selector?: Record<string, string>;
  hardware: Group['hardware'];
  installedBoot: string;
  uefiLoader: string;
  leaseSeconds: number;
  nodes: string[];
}

export function groupView(group: Group, inv: Inventory): GroupView {
  const view: GroupView = {
    name: group.name,
    roles: group.roles,
    kernelArgs: group.kernelArgs,
    ...(group.selector !== undefined ? { selector: group.selector } : {}),
    hardware: group.hardware,
    installedBoot: group.installedBoot,
    uefiLoader: group.uefiLoader,
    leaseSeconds: group.leaseSeconds,
    nodes: [...inv.nodes.values()].filter((n) => n.group === group.name).map((n) => n.name),
  };
  if (group.description) view.description = group.description;
  if (group.image) view.image = group.image;
  return view;
}

export interface FleetStatus {
  server: string;
  nodes: number;
  discovered: number;
  reimagePending: number;
  /** Nodes whose disks are to be wiped on their next network boot (not those wiping now: byState counts them). */
  wipePending: number;
  byState: Record<LifecycleState | 'unknown', number>;
}

export function fleetStatus(server: string, views: NodeView[]): FleetStatus {
  const byState = Object.fromEntries([...LIFECYCLE_STATES, 'unknown'].map((s) => [s, 0])) as FleetStatus['byState'];
  for (const v of views) byState[v.state]++;
  return {
    server,
    nodes: views.filter((v) => v.inInventory).length,
    discovered: views.filter((v) => !v.inInventory).length,
    reimagePending: views.filter((v) => v.reimageRequested).length,
    wipePending: views.filter((v) => v.wipeRequested !== undefined && v.state !== 'wiping').length,
    byState,
  };
}
