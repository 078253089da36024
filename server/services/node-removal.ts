import { expandHostlist } from '../inventory/hostlist.js';
import { EXCLUDE_PREFIX } from '../inventory/select.js';
import { RackseedError } from '../model/errors.js';
import type { Inventory } from '../model/inventory.js';
import type { LifecycleState } from '../model/lifecycle.js';
import type { NewEvent, NodeStatus, ObservedStore } from '../store/types.js';
import type { InventoryService } from './inventory-service.js';
import type { NodeLocks } from './node-locks.js';

/** One node a removal names, and what is known of it before anything changes. */
export interface RemovalTarget {
  node: string;
  /**
   * Declared in the inventory now. False: only the store still knows the name (an entry deleted by hand, or a
   * removal cut short after its inventory edit); removing it then finishes the rest.
   */
  inInventory: boolean;
  state: LifecycleState | 'unknown';
  /** The inventory's MACs, and the one the machine was last seen with. */
  macs: string[];
  ip?: string;
  /** Where the inventory declares it (file:line nodes[i]), filled in by the inventory's dry run. */
  entry?: string;
  /**
   * An apply, readiness check, audit or convergence holds its lock or waits for it (NodeLocks.isBusy). Refused
   * without `force`; with it, removed without waiting: that operation goes on, and the events it records later are refused.
   */
  busy?: true;
  /** Why it is refused: it is installing now, or busy (above), and `force` was not given. */
  refused?: string;
}

/** What removing one node did after its inventory entry was gone. */
export interface RemovedNode {
  node: string;
  entry?: string;
  state: RemovalTarget['state'];
  /** Removed (with `force`) while an operation held its lock: the events that operation records later are refused. */
  busy?: true;
  /** The MAC its record is kept under, as a discovered machine (absent: no MAC was ever known for it). */
  keptAs?: string;
  /** DHCP leases of its MACs that were released: their addresses are free for other machines at once. */
  releasedLeases: Array<{ ip: string; mac: string }>;
  /** Whether it had an SSH host key and pin in the data directory, now deleted. */
  hostKeyForgotten: boolean;
  /** What could not be done (the node's entry is gone all the same); running the removal again retries it. */
  errors: string[];
}

export interface RemovalSummary {
  removed: RemovedNode[];
  /** Set when the inventory file was written but something that follows a reload (the store sync) failed. */
  inventoryProblem?: string;
}

/** Removal names exactly what it removes: names and hostlists, never a selector whose members change over time. */
function namesOf(exprs: readonly string[]): string[] {
  const names: string[] = [];
  for (const raw of exprs) {
    const expr = raw.trim();
    if (expr === '' || expr.startsWith('group:') || expr.startsWith('role:') || expr.startsWith(EXCLUDE_PREFIX) || expr.includes('=')) {
      throw new RackseedError('BAD_REQUEST', `"${raw}": node remove takes node names and hostlists (gpu[01-04]), not group:, role:, not: or label selectors`);
    }
    for (const name of expandHostlist(expr)) if (!names.some((n) => n.toLowerCase() === name.toLowerCase())) names.push(name);
  }
  return names;
}

const BUSY = 'an apply, readiness check, audit or convergence is running on it or queued for it: wait for it to end (rackseed runs list NAME), or --force removes it without waiting';

/**
 * Marks the targets whose operation lock is taken now, and refuses them without `force`. Run again just before the
 * removal takes the locks (executeRemoval): what was idle at the dry run may be busy by then, and the reverse.
 */
export function markBusy(targets: RemovalTarget[], isBusy: (node: string) => boolean, force: boolean): void {
  for (const t of targets) {
    const reason = BUSY.replace('NAME', t.node);
    if (t.refused === reason) delete t.refused;
    delete t.busy;
    if (!isBusy(t.node)) continue;
    t.busy = true;
    if (!force && t.refused === undefined) t.refused = reason;
  }
}

/**
 * Which nodes `exprs` name, and which of them may go. A node installing now (`provisioning`) is refused without
 * `force`: its installer is writing its disk and would be cut off mid-way, as reimage refuses; so is one wiping now. So is a node another
 * operation holds (`isBusy`, see markBusy). A name that neither the inventory nor the store knows is an error; so is
 * a discovered machine's MAC (there is no node to remove: store retention forgets it).
 */
export function planRemoval(
  inv: Inventory,
  statuses: ReadonlyMap<string, NodeStatus>,
  exprs: readonly string[],
  force: boolean,
  isBusy: (node: string) => boolean = () => false,
): RemovalTarget[] {
  const byLowerName = new Map([...inv.nodes.values()].map((n) => [n.name.toLowerCase(), n] as const));
  const statusByLowerId = new Map([...statuses.values()].map((s) => [s.id.toLowerCase(), s] as const));
  const targets = namesOf(exprs).map((name): RemovalTarget => {
    const node = byLowerName.get(name.toLowerCase());
    const status = statusByLowerId.get((node?.name ?? name).toLowerCase());
    if (!node && (!status || status.id === status.mac)) {
      throw new RackseedError('NODE_NOT_FOUND', `no node "${name}" in the inventory or the store${status ? ' (that is a discovered machine: store retention forgets it)' : ''}`, { node: name });
    }
    const macs = [...new Set([...(node?.macs ?? []), ...(status?.mac ? [status.mac] : [])])];
    const state = status?.state ?? 'unknown';
    return {
      node: node?.name ?? status!.id,
      inInventory: node !== undefined,
      state,
      macs,
      ...(node?.ip ? { ip: node.ip } : {}),
      ...(state === 'provisioning' && !force ? { refused: 'installing now (provisioning): removing it would cut its install off; --force removes it anyway' } : {}),
      // Retiring a machine is wipe, then remove: removed mid-wipe, its "wiped" report would be refused, and no record
      // would say the disks were erased.
      ...(state === 'wiping' && !force ? { refused: 'wiping its disks now: remove it once it is wiped (rackseed events NAME); --force removes it anyway, and its wipe is then never recorded' } : {}),
    };
  });
  markBusy(targets, isBusy, force);
  return targets;
}

export interface RemovalDeps {
  inventory: Pick<InventoryService, 'removeNodes'>;
  store: ObservedStore;
  /** Deletes a node's SSH host key and pin (NodeIdentity.forget). */
  forgetIdentity: (node: string) => Promise<boolean>;
  /** Releases a lease, through the DHCP lease book when this server hands out addresses (it remembers leases). */
  releaseLease: (ip: string, mac: string) => Promise<void>;
  /** The per-node operation locks the state, readiness, audit and convergence services share. */
  locks: Pick<NodeLocks, 'isBusy' | 'acquireAll'>;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Removes planned nodes (none refused, busy ones included; `force` as planned): their inventory entries first, then
 * what the server keeps about them, holding the nodes' operation locks throughout so that no apply, readiness check
 * or convergence starts on a node half removed. A node busy now is refused without `force` (nothing is removed);
 * with it, it is removed without its lock: waiting could mean waiting for a hung apply on a machine being thrown out.
 * The inventory goes first because it decides what a machine is: a store record retired while the entry stayed
 * would have the node assigned again and reinstalled at its next boot. Then the host key and pin and the DHCP leases,
 * and last the store record, which `removed` turns into a discovered machine kept under its MAC, with its facts,
 * events and runs, until store retention forgets it. A step that fails leaves the store record under the node's
 * name, so running the removal again finds it and retries.
 */
export async function executeRemoval(targets: RemovalTarget[], deps: RemovalDeps, force = false): Promise<RemovalSummary> {
  // The check and the queueing for the locks are one synchronous step: no operation can start in between.
  markBusy(targets, (node) => deps.locks.isBusy(node), force);
  const refused = targets.filter((t) => t.refused);
  if (refused.length > 0) throw new RackseedError('NODE_BUSY', `nothing removed: ${refused.map((t) => `${t.node}: ${t.refused}`).join('; ')}`);
  const release = await deps.locks.acquireAll(targets.filter((t) => !t.busy).map((t) => t.node));
  try {
    return await removeLocked(targets, deps);
  } finally {
    release();
  }
}

async function removeLocked(targets: readonly RemovalTarget[], deps: RemovalDeps): Promise<RemovalSummary> {
  const summary: RemovalSummary = { removed: [] };
  const inInventory = targets.filter((t) => t.inInventory).map((t) => t.node);
  const entries = new Map<string, string>();
  if (inInventory.length > 0) {
    try {
      for (const r of await deps.inventory.removeNodes(inInventory, { dryRun: false })) entries.set(r.node, r.entry);
    } catch (e) {
      // The file is written and loaded; only a listener failed (the store sync, say): the entries are gone.
      if (!(e instanceof RackseedError && e.code === 'INVENTORY_APPLY_FAILED')) throw e;
      summary.inventoryProblem = e.message;
    }
  }
  const results = targets.map((t): RemovedNode => ({
    node: t.node,
    ...(entries.has(t.node) ? { entry: entries.get(t.node)! } : {}),
    state: t.state,
    ...(t.busy ? { busy: true as const } : {}),
    releasedLeases: [],
    hostKeyForgotten: false,
    errors: [],
  }));
  const cleanUps = results.map((r, i) => ({ r, t: targets[i]! }));
  for (const { r, t } of cleanUps) {
    try {
      r.hostKeyForgotten = await deps.forgetIdentity(t.node);
    } catch (e) {
      r.errors.push(`host key: ${message(e)}`);
    }
    for (const mac of t.macs) {
      try {
        const lease = await deps.store.getLeaseByMac(mac);
        if (lease && lease.mac === mac && (lease.state === 'bound' || lease.state === 'offered')) {
          await deps.releaseLease(lease.ip, mac);
          r.releasedLeases.push({ ip: lease.ip, mac });
        }
      } catch (e) {
        r.errors.push(`lease of ${mac}: ${message(e)}`);
      }
    }
  }
  // Only nodes whose clean-up went through are retired; the others keep their record under their name for a re-run.
  const retire = cleanUps.filter(({ r }) => r.errors.length === 0);
  try {
    const statuses = new Map<string, NodeStatus>();
    for (const { t } of retire) {
      const s = await deps.store.getNode(t.node);
      if (s) statuses.set(t.node, s);
    }
    const events: NewEvent[] = retire
      .filter(({ t }) => statuses.has(t.node))
      .map(({ r, t }) => ({ node: t.node, event: { type: 'removed', ...(r.entry ? { entry: r.entry } : {}) } }));
    // One transaction for every node's event, as reimage marks them.
    const recorded = await deps.store.recordEvents(events);
    for (const rec of recorded) if (!rec.ok) results.find((r) => r.node === rec.node)!.errors.push(`store: ${rec.error}`);
    for (const { r, t } of retire) {
      const status = statuses.get(t.node);
      const mac = status?.mac ?? t.macs[0];
      if (!status || r.errors.length > 0 || mac === undefined) continue;
      // Keyed by its MAC, the record is what the boot route finds for an unknown machine, what store sync renames if
      // the MAC is added again, and what retention forgets once the machine has not been seen for discovered_days.
      await deps.store.renameNode(t.node, mac);
      // A node that never booted has no MAC on its record (the inventory's is used): without it, retention, which
      // forgets records keyed by their own MAC, would keep this one for ever. Seen now: forgotten discovered_days on.
      if (status.mac === undefined) await deps.store.touchNode(mac, { mac });
      r.keptAs = mac;
    }
  } catch (e) {
    for (const { r } of retire) if (r.keptAs === undefined) r.errors.push(`store: ${message(e)}`);
  }
  summary.removed = results;
  return summary;
}
