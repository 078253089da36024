import { resolveTargets } from '../inventory/select.js';
import { isRackseedError, RackseedError } from '../model/errors.js';
import type { Inventory, ResolvedNode } from '../model/inventory.js';
import { isPostInstallStage, WIPE_STAGE, type LifecycleEvent, type LifecycleState, type WipeMode } from '../model/lifecycle.js';
import { runBatch } from '../power/batch.js';
import type { PowerResult } from '../power/types.js';
import type { NewEvent, NodeStatus, ObservedStore } from '../store/types.js';
import { SLURM_COMPUTE_ROLE, SLURM_CONTROLLER_ROLE, slurmControllers, type SlurmRebooter } from './slurm-reboot.js';
import { slurmBudgetMs } from './slurm-controller.js';
import type { SlurmNodeAnswer } from './slurm-reboot-script.js';

/**
 * Fleet reimage: mark the targeted nodes for reimaging (one store transaction, whatever their number), then reboot
 * them so they PXE boot into the installer. planReimage is pure; executeReimage takes its side effects (SSH, BMC)
 * as a Rebooter so it can be driven without machines.
 */

/**
 * A reimage reinstalls nodes as the inventory describes them when they boot. With `group`, it first moves them into
 * that group by editing their inventory entries (the inventory is where a node's group, and so its image and roles,
 * is declared, and what convergence, readiness and audit read), then marks them: one command, as an operator
 * reimaging Slurm nodes into K3s expects.
 */
export interface ReimageRequest {
  /** CLI targets: names, hostlists, group:NAME, role:NAME, key=value labels. */
  targets: string[];
  /** The group to move the nodes into before marking them. */
  group?: string;
  /** Also restart installs under way (a node `provisioning`); without it such nodes are left alone. */
  force?: boolean;
  /**
   * Slurm compute nodes that run their OS are not rebooted now: Slurm is asked to drain them and reboot each once its
   * jobs are done (`scontrol reboot ASAP`), so a reimage of a busy partition kills no job.
   */
  whenIdle?: boolean;
  /**
   * Not a reinstall: the nodes' disks are erased in this mode on their next network boot (`rackseed wipe`), and they
   * power off. Marked and rebooted as a reimage is; takes neither `group` nor `whenIdle`.
   */
  wipe?: WipeMode;
}

/** Why `--role` is refused: a node's roles come from its group. */
export const REIMAGE_INTO_ROLE_HINT =
  "reimage does not take a role: a node's roles come from its group. Move the nodes into a group with those roles (reimage --group NAME), or set their overrides.roles in the inventory and reimage them";

/**
 * How a node is rebooted: over SSH when it runs its OS, else through its BMC, else an operator does it; with
 * `whenIdle`, a Slurm compute node that runs its OS is rebooted by Slurm once its jobs are done.
 */
export type RebootMethod = 'ssh' | 'bmc' | 'manual' | 'slurm';

/** Lifecycle states in which a node runs its installed OS and can be asked to reboot over SSH. */
const UP_STATES: ReadonlySet<LifecycleState> = new Set(['installed', 'configuring', 'ready']);

export interface PlannedNode {
  node: string;
  /** The group it installs into. */
  group: string;
  /** The group it leaves, when the reimage moves it. */
  fromGroup?: string;
  /** Observed lifecycle state; absent when the store has never heard of the node. */
  state?: LifecycleState;
  reboot: RebootMethod;
  /** An SSH reboot that fails falls back to the BMC. */
  bmcFallback: boolean;
  ip?: string;
  /** A reimage was already pending (it is requested again). */
  alreadyPending: boolean;
  /** Why the node cannot be marked; such nodes are left alone. */
  skip?: string;
}

export interface ReimagePlan {
  /** Set for a wipe: what the marks request. */
  wipe?: WipeMode;
  nodes: PlannedNode[];
  counts: { targeted: number; toMark: number; skipped: number; ssh: number; bmc: number; manual: number; slurm: number };
}

function rebootMethod(node: ResolvedNode, status: NodeStatus | undefined, whenIdle: boolean): RebootMethod {
  const state = status?.state;
  const up = state !== undefined && UP_STATES.has(state);
  // A node not running its OS runs no jobs: it is rebooted as usual. One whose states or readiness failed runs its OS,
  // and may run jobs (a drained node whose jobs are finishing fails readiness with Slurm's reason).
  const runsOs = up || (state === 'failed' && isPostInstallStage(status?.stage));
  if (whenIdle && runsOs && node.roles.includes(SLURM_COMPUTE_ROLE)) return 'slurm';
  if (up && node.ip !== undefined) return 'ssh';
  return node.bmc ? 'bmc' : 'manual';
}

/**
 * Which nodes a reimage touches and how; changes nothing. Throws for unknown targets. `movedFrom` names the group
 * each node leaves when the request moves it into `request.group` (nodes already in that group are not in it).
 */
export function planReimage(inv: Inventory, statuses: ReadonlyMap<string, NodeStatus>, request: ReimageRequest, movedFrom: ReadonlyMap<string, string> = new Map()): ReimagePlan {
  if (request.wipe !== undefined && (request.group !== undefined || request.whenIdle === true)) {
    throw new RackseedError('BAD_REQUEST', 'a wipe takes no group and no --when-idle: it erases the disks and powers the nodes off (drain Slurm nodes first)');
  }
  const wipe = request.wipe;
  const targets = resolveTargets(inv, request.targets);
  const nodes = targets.map((n): PlannedNode => {
    const status = statuses.get(n.name);
    const state = status?.state;
    const reboot = rebootMethod(n, status, request.whenIdle === true);
    const fromGroup = movedFrom.get(n.name);
    const planned: PlannedNode = {
      node: n.name,
      group: request.group ?? n.group,
      ...(fromGroup !== undefined ? { fromGroup } : {}),
      reboot,
      bmcFallback: reboot === 'ssh' && n.bmc !== undefined,
      alreadyPending: wipe !== undefined ? status?.wipeRequested !== undefined : status?.reimageRequested === true,
      ...(state !== undefined ? { state } : {}),
      ...(n.ip !== undefined ? { ip: n.ip } : {}),
    };
    const what = wipe !== undefined ? 'wipe' : 'reimage';
    // The lifecycle refuses a reimage for a machine never assigned (there is nothing to reimage it into), and a wipe:
    // until a node has booted from the network once, the server has never seen the machine it would send to be wiped.
    if (state === undefined || state === 'discovered') planned.skip = `not assigned yet: nothing to ${what}`;
    // A reimage reboots it into the installer: for a node installing now that throws away the install under way.
    else if (state === 'provisioning' && request.force !== true) planned.skip = `installing now: left alone (force ${wipe !== undefined ? 'stops its install to wipe it' : 'restarts its install'})`;
    else if (state === 'wiping' && request.force !== true) planned.skip = `wiping its disks now: left alone (force ${wipe !== undefined ? 'restarts the wipe' : 'reboots it: the wipe starts again, and the install follows at the next boot; wipe --cancel --force first to abandon the wipe'})`;
    return planned;
  });
  const active = nodes.filter((n) => !n.skip);
  if (active.some((n) => n.reboot === 'slurm') && slurmControllers(inv).length === 0) {
    throw new RackseedError('BAD_REQUEST', `--when-idle asks Slurm to reboot its compute nodes, but no node of the inventory has the ${SLURM_CONTROLLER_ROLE} role to ask it through`);
  }
  return {
    ...(wipe !== undefined ? { wipe } : {}),
    nodes,
    counts: {
      targeted: nodes.length,
      toMark: active.length,
      skipped: nodes.length - active.length,
      ssh: active.filter((n) => n.reboot === 'ssh').length,
      bmc: active.filter((n) => n.reboot === 'bmc').length,
      manual: active.filter((n) => n.reboot === 'manual').length,
      slurm: active.filter((n) => n.reboot === 'slurm').length,
    },
  };
}

/** The side effects of the reboot phase. */
export interface Rebooter {
  /** Reboots a running node over SSH; rejects on failure; must stop when `signal` aborts. */
  ssh(node: string, ip: string, signal: AbortSignal): Promise<void>;
  /** Boots these nodes from the network through their BMCs; one result per node, each reported as it is known. */
  bmcPxe(nodes: ResolvedNode[], onResult: (r: PowerResult) => void): Promise<PowerResult[]>;
  /** Asks Slurm to reboot nodes once their jobs are done (reimage --when-idle); without it such nodes fail. */
  slurm?: SlurmRebooter;
  /** SSH reboots at once and the time each may take. */
  sshConcurrency: number;
  sshTimeoutMs: number;
  /**
   * Nodes whose reimage reboot some request is sending now, shared by every request of this process. A second reimage
   * of such a node marks it (the mark is already there) but does not reboot it again: a second BMC `pxe` or SSH reboot
   * would restart the machine while it boots, or is already in the installer, from the first.
   */
  underWay?: Set<string>;
}

export type ReimagePhase = 'mark' | 'reboot';

export interface ReimageProgress {
  phase: ReimagePhase;
  done: number;
  total: number;
  /** Set for per-node progress of the reboot phase. */
  node?: string;
  method?: RebootMethod;
  ok?: boolean;
  /** Why this node's reboot failed. Not named `error`: on an NDJSON stream a top-level `error` ends the stream. */
  failure?: string;
  /** Another request is sending this node's reboot; this one did not. */
  underWay?: true;
  /** Method `slurm`: the node's Slurm state once the request was taken. */
  slurmState?: string;
}

export interface RebootOutcome {
  node: string;
  /** How it was (or must be) rebooted in the end. */
  method: RebootMethod;
  ok: boolean;
  error?: string;
  /** Why SSH did not work, when the BMC was tried after it. */
  sshError?: string;
  /** Not rebooted by this request: another request was sending its reboot (`ok` says nothing about that one). */
  underWay?: true;
  /** Method `slurm`: the node's Slurm state once the request was taken (`draining`: jobs still run; `reboot^`). */
  slurmState?: string;
}

export interface ReimageSummary {
  marked: string[];
  /** Nodes the store refused to mark (lifecycle) or the plan skipped. */
  notMarked: Array<{ node: string; error: string }>;
  reboots: RebootOutcome[];
  counts: { marked: number; notMarked: number; rebootedSsh: number; rebootedBmc: number; manual: number; failed: number; rebootUnderWay: number; slurmWhenIdle: number };
}

/**
 * Marks every planned node in ONE recordEvents call (one transaction: 10,000 nodes cost one durable commit), then
 * reboots the marked ones: SSH first for nodes that are up, their BMC for the rest and for failed SSH attempts.
 * Nodes with neither are reported for an operator to reboot by hand.
 */
export async function executeReimage(
  plan: ReimagePlan,
  inv: Inventory,
  store: ObservedStore,
  rebooter: Rebooter,
  onProgress: (p: ReimageProgress) => void = () => undefined,
  /**
   * Runs between the two phases with the nodes the store marked (a move into another group). If it throws, the
   * marks are withdrawn and nothing is rebooted.
   */
  afterMark?: (marked: readonly string[]) => Promise<void>,
): Promise<ReimageSummary> {
  const planned = plan.nodes.filter((n) => !n.skip);
  const notMarked = plan.nodes.filter((n) => n.skip).map((n) => ({ node: n.node, error: n.skip! }));
  const wipe = plan.wipe;
  const mark = (n: PlannedNode): LifecycleEvent => (wipe !== undefined ? { type: 'wipe_requested', mode: wipe } : { type: 'reimage_requested', ...(n.fromGroup !== undefined ? { fromGroup: n.fromGroup } : {}) });
  const batch: NewEvent[] = planned.map((n) => ({ node: n.node, event: mark(n) }));
  onProgress({ phase: 'mark', done: 0, total: batch.length });
  const recorded = batch.length > 0 ? await store.recordEvents(batch) : [];
  const markedSet = new Set<string>();
  /** Each mark's event id: what a cancel recorded after it is how a cancel that raced the Slurm request is found. */
  const markIds = new Map<string, number>();
  for (const r of recorded) {
    if (r.ok) {
      markedSet.add(r.event.node);
      markIds.set(r.event.node, r.event.id);
    }
    else notMarked.push({ node: r.node, error: r.error });
  }
  onProgress({ phase: 'mark', done: batch.length, total: batch.length });

  const toReboot = planned.filter((n) => markedSet.has(n.node));
  if (afterMark) {
    try {
      await afterMark(toReboot.map((n) => n.node));
    } catch (err) {
      // Only the marks this request made are withdrawn: a node whose reimage was pending before keeps it (the flag is
      // one per node, so cancelling it here withdrew the earlier request without a word).
      const made = toReboot.filter((n) => !n.alreadyPending);
      if (made.length > 0) await store.recordEvents(made.map((n) => ({ node: n.node, event: { type: wipe !== undefined ? 'wipe_cancelled' : 'reimage_cancelled' } })));
      if (isRackseedError(err)) throw err;
      const kept = toReboot.length - made.length;
      throw new RackseedError(
        'INVENTORY_WRITE_FAILED',
        `moving the nodes into their new group failed (${(err as Error).message}): the ${made.length} mark(s) this request made were withdrawn${kept > 0 ? `, ${kept} pending from before stay` : ''}, and nothing was rebooted`,
        {},
        { cause: err },
      );
    }
  }
  const outcomes = new Map<string, RebootOutcome>();
  let done = 0;
  const finish = (o: RebootOutcome) => {
    outcomes.set(o.node, o);
    done += 1;
    onProgress({ phase: 'reboot', done, total: toReboot.length, node: o.node, method: o.method, ok: o.ok, ...(o.error ? { failure: o.error } : {}), ...(o.underWay ? { underWay: true } : {}), ...(o.slurmState !== undefined ? { slurmState: o.slurmState } : {}) });
  };
  onProgress({ phase: 'reboot', done: 0, total: toReboot.length });

  for (const n of toReboot.filter((p) => p.reboot === 'manual')) {
    finish({ node: n.node, method: 'manual', ok: false, error: 'no SSH access and no BMC: reboot it by hand' });
  }

  // Claimed synchronously, before the first await, so two requests cannot both take a node.
  const underWay = rebooter.underWay ?? new Set<string>();
  const mine = new Set<string>();
  for (const n of toReboot.filter((p) => p.reboot !== 'manual')) {
    if (underWay.has(n.node)) {
      finish({ node: n.node, method: n.reboot, ok: true, underWay: true });
    } else {
      underWay.add(n.node);
      mine.add(n.node);
    }
  }
  const settle = (o: RebootOutcome) => {
    underWay.delete(o.node);
    finish(o);
  };

  try {
    const viaBmc: ResolvedNode[] = toReboot.filter((n) => n.reboot === 'bmc' && mine.has(n.node)).map((n) => inv.nodes.get(n.node)!);
    const sshErrors = new Map<string, string>();
    const viaSsh = toReboot.filter((n) => n.reboot === 'ssh' && mine.has(n.node));
    const viaSlurm = toReboot.filter((n) => n.reboot === 'slurm' && mine.has(n.node)).map((n) => n.node);
    if (viaSlurm.length > 0) {
      // Never a reboot by other means when Slurm cannot be asked: that would kill the jobs --when-idle is for.
      const notAsked = 'rackseed did not reboot it (its jobs run on) and its mark stays: reimage it again, or cancel the reimage';
      const answers = rebooter.slurm
        ? await rebooter.slurm.requestReboots(viaSlurm, AbortSignal.timeout(slurmBudgetMs(inv, viaSlurm.length, rebooter.sshTimeoutMs)))
        : viaSlurm.map((node) => ({ node, ok: false as const, error: 'this server cannot ask Slurm' }));
      const withdrawn = rebooter.slurm ? await withdrawIfCancelledMeanwhile(answers, markIds, inv, store, rebooter.slurm, rebooter.sshTimeoutMs) : new Map<string, string>();
      for (const a of answers) {
        const cancelled = withdrawn.get(a.node);
        if (cancelled !== undefined) {
          settle({ node: a.node, method: 'slurm', ok: false, error: cancelled });
          continue;
        }
        // sinfo's `*`: slurmd does not answer slurmctld, so the reboot Slurm took will never be sent to the node.
        if (a.ok && a.slurmState?.endsWith('*')) {
          settle({ node: a.node, method: 'slurm', ok: false, slurmState: a.slurmState, error: `Slurm took the reboot, but its slurmd does not respond (${a.slurmState}): Slurm cannot reboot it; ${notAsked}` });
        } else if (a.ok) settle({ node: a.node, method: 'slurm', ok: true, ...(a.slurmState !== undefined ? { slurmState: a.slurmState } : {}) });
        else settle({ node: a.node, method: 'slurm', ok: false, error: `Slurm did not take the reboot: ${a.error}; ${notAsked}` });
      }
    }
    await runBatch(
      viaSsh,
      { concurrency: rebooter.sshConcurrency, timeoutMs: rebooter.sshTimeoutMs },
      (n, signal) => rebooter.ssh(n.node, n.ip!, signal),
      (n, settled) => {
        if (settled.ok) return settle({ node: n.node, method: 'ssh', ok: true });
        if (n.bmcFallback) {
          sshErrors.set(n.node, settled.error);
          viaBmc.push(inv.nodes.get(n.node)!);
        } else {
          settle({ node: n.node, method: 'manual', ok: false, error: `SSH reboot failed (${settled.error}) and no BMC: reboot it by hand` });
        }
      },
    );

    if (viaBmc.length > 0) {
      await rebooter.bmcPxe(viaBmc, (r) => {
        const sshError = sshErrors.get(r.node);
        settle({ node: r.node, method: 'bmc', ok: r.ok, ...(r.error ? { error: r.error } : {}), ...(sshError ? { sshError } : {}) });
      });
    }
  } finally {
    // A reboot phase that threw must not leave its nodes claimed for ever (no later request could reboot them).
    for (const node of mine) underWay.delete(node);
  }

  const reboots = toReboot.map((n) => outcomes.get(n.node)!);
  return {
    marked: toReboot.map((n) => n.node),
    notMarked,
    reboots,
    counts: {
      marked: toReboot.length,
      notMarked: notMarked.length,
      rebootedSsh: reboots.filter((r) => r.ok && !r.underWay && r.method === 'ssh').length,
      rebootedBmc: reboots.filter((r) => r.ok && !r.underWay && r.method === 'bmc').length,
      manual: reboots.filter((r) => r.method === 'manual').length,
      failed: reboots.filter((r) => !r.ok && r.method !== 'manual').length,
      rebootUnderWay: reboots.filter((r) => r.underWay).length,
      slurmWhenIdle: reboots.filter((r) => r.ok && !r.underWay && r.method === 'slurm').length,
    },
  };
}

export interface CancelSummary {
  /** Nodes whose pending reimage was withdrawn. */
  cancelled: string[];
  /** Targeted nodes that had no reimage pending (left as they were). */
  notPending: string[];
  /** Cancelled nodes that reimage --group had moved, moved back into the group they left. */
  restored: Array<{ node: string; group: string }>;
  /** Cancelled nodes that could not be moved back (the inventory edit failed, or their old group is gone). */
  notRestored: Array<{ node: string; group: string; error: string }>;
  /** Cancelled nodes whose reboot a `--when-idle` reimage had asked Slurm for, withdrawn in Slurm (drain lifted). */
  slurmCancelled: string[];
  /** Cancelled nodes whose Slurm reboot could not be withdrawn: Slurm still drains and reboots them. */
  slurmNotCancelled: Array<{ node: string; error: string }>;
}

export interface WipeCancelSummary {
  /** Nodes whose pending wipe was withdrawn. */
  cancelled: string[];
  /** Targeted nodes that had no wipe pending. */
  notPending: string[];
  /** Nodes wiping their disks now: past cancelling. */
  underWay: string[];
  /** Nodes wiping now whose wipe `force` abandoned: failed in stage wipe, their disks in an unknown state. */
  abandoned: string[];
}

/** The reason a wipe abandoned by `wipe --cancel --force` fails with. */
export const WIPE_ABANDONED = 'wipe abandoned by the operator (wipe --cancel --force): the disks are in an unknown state; wipe again or reimage';

/**
 * Withdraws pending wipes (one store transaction). A node already wiping is past cancelling (what it erased is
 * gone), unless `force`: then its wipe is abandoned, recorded as failed in stage wipe, so a machine whose wipe will
 * never report (powered off for good, its installer unable to reach the server) is not wiped again at every boot and
 * can be reimaged. Throws for unknown targets.
 */
export async function cancelWipe(inv: Inventory, store: ObservedStore, targets: string[], force = false): Promise<WipeCancelSummary> {
  const nodes = resolveTargets(inv, targets);
  const statuses = new Map((await store.listNodes()).map((s) => [s.id, s]));
  const summary: WipeCancelSummary = { cancelled: [], notPending: [], underWay: [], abandoned: [] };
  const events: NewEvent[] = [];
  for (const n of nodes) {
    const s = statuses.get(n.name);
    if (s?.state === 'wiping' && force) events.push({ node: n.name, event: { type: 'failed', reason: WIPE_ABANDONED, stage: WIPE_STAGE } });
    else if (s?.state === 'wiping') summary.underWay.push(n.name);
    else if (s?.wipeRequested !== undefined) events.push({ node: n.name, event: { type: 'wipe_cancelled' } });
    else summary.notPending.push(n.name);
  }
  const recorded = events.length > 0 ? await store.recordEvents(events) : [];
  for (const r of recorded) {
    if (r.ok) (r.event.event.type === 'failed' ? summary.abandoned : summary.cancelled).push(r.event.node);
    // Refused only when the node started wiping between the read and the write.
    else summary.underWay.push(r.node);
  }
  return summary;
}

/** Moves nodes into a group by editing the inventory (InventoryService.moveToGroup); answers the nodes it moved. */
export type GroupMover = (names: readonly string[], group: string) => Promise<Array<{ node: string }>>;

/**
 * Withdraws pending reimages (one store transaction), e.g. for a node marked by mistake or whose reboot failed: a
 * mark stays until the node next boots from the network, which may be an unrelated reboot weeks later. Throws for
 * unknown targets, like planReimage. A node already in the installer is past cancelling: its mark was consumed.
 *
 * A node that reimage --group moved is moved back into the group it left: its disk still holds the OS that group's
 * image and roles made, and leaving it in the new group would have convergence apply the new roles onto the old OS.
 * The marks are withdrawn first, so a node that began installing meanwhile (its mark consumed) keeps its new group.
 */
export async function cancelReimage(inv: Inventory, store: ObservedStore, targets: string[], moveBack?: GroupMover): Promise<CancelSummary> {
  const nodes = resolveTargets(inv, targets);
  const statuses = new Map((await store.listNodes()).map((s) => [s.id, s]));
  const pending = nodes.filter((n) => statuses.get(n.name)?.reimageRequested === true).map((n) => n.name);
  const recorded = pending.length > 0 ? await store.recordEvents(pending.map((node) => ({ node, event: { type: 'reimage_cancelled' } }))) : [];
  const cancelled = recorded.filter((r) => r.ok).map((r) => (r.ok ? r.event.node : ''));
  const done = new Set(cancelled);
  const summary: CancelSummary = { cancelled, notPending: nodes.map((n) => n.name).filter((n) => !done.has(n)), restored: [], notRestored: [], slurmCancelled: [], slurmNotCancelled: [] };
  if (!moveBack) return summary;

  const backTo = new Map<string, string[]>();
  for (const node of cancelled) {
    const group = statuses.get(node)?.reimageFromGroup;
    if (group === undefined || inv.nodes.get(node)?.group === group) continue;
    backTo.set(group, [...(backTo.get(group) ?? []), node]);
  }
  for (const [group, names] of backTo) {
    try {
      const moved = new Set((await moveBack(names, group)).map((m) => m.node));
      for (const node of names) {
        if (moved.has(node)) summary.restored.push({ node, group });
        else summary.notRestored.push({ node, group, error: 'the inventory edit did not move it' });
      }
    } catch (err) {
      for (const node of names) summary.notRestored.push({ node, group, error: (err as Error).message });
    }
  }
  return summary;
}

/**
 * The Slurm request runs after the marks lock is released, so a cancel can withdraw a mark while Slurm is being asked,
 * find no Slurm reboot yet, and leave the one that lands after it. So once Slurm answered, a node it took whose mark
 * is gone is looked at: if a cancel was recorded after this request's mark (not an install that used the mark: an
 * idle node Slurm rebooted at once may be installed by now), its Slurm reboot is withdrawn here. Answers: node ->
 * why it failed.
 */
async function withdrawIfCancelledMeanwhile(answers: readonly SlurmNodeAnswer[], markIds: ReadonlyMap<string, number>, inv: Inventory, store: ObservedStore, slurm: SlurmRebooter, timeoutMs: number): Promise<Map<string, string>> {
  const taken = new Set(answers.filter((a) => a.ok).map((a) => a.node));
  if (taken.size === 0) return new Map();
  const unmarked = (await store.listNodes()).filter((s) => taken.has(s.id) && !s.reimageRequested).map((s) => s.id);
  const cancelled: string[] = [];
  for (const node of unmarked) {
    const since = await store.listEvents({ node, afterId: markIds.get(node) ?? 0 });
    if (since.some((e) => e.event.type === 'reimage_cancelled')) cancelled.push(node);
  }
  if (cancelled.length === 0) return new Map();
  const result = new Map<string, string>();
  for (const a of await slurm.cancelReboots(cancelled, AbortSignal.timeout(slurmBudgetMs(inv, cancelled.length, timeoutMs)))) {
    result.set(
      a.node,
      a.outcome === 'failed'
        ? `the reimage was cancelled while Slurm was being asked, and its Slurm reboot could not be withdrawn (${a.error}): Slurm still drains and reboots it; run reimage --cancel again`
        : a.outcome === 'cancelled'
          ? 'the reimage was cancelled while Slurm was being asked: its Slurm reboot was withdrawn'
          : 'the reimage was cancelled while Slurm was being asked; Slurm holds no reboot of rackseed\'s for it (already withdrawn, or already under way)',
    );
  }
  return result;
}

/**
 * After a cancel (outside its lock: Slurm may take a while to answer). A `--when-idle` reimage left Slurm draining the
 * node, to reboot it when idle: without this the node would stay out of the scheduler and reboot (into its old OS,
 * the mark gone) for nothing. Only reboots with rackseed's reason are withdrawn (slurm-reboot-script.ts); a Slurm
 * compute node without one is left as it is, and so is any node when the inventory has no controller (then no
 * request can have been made).
 */
export async function withdrawSlurmReboots(inv: Inventory, summary: CancelSummary, slurm: SlurmRebooter, timeoutMs: number): Promise<void> {
  // Also the targeted nodes that had no mark: a cancel whose withdrawal failed (the controller was down) withdrew the
  // mark all the same, and running it again must be able to finish the job.
  const computes = [...summary.cancelled, ...summary.notPending].filter((n) => inv.nodes.get(n)?.roles.includes(SLURM_COMPUTE_ROLE) === true);
  if (computes.length === 0 || slurmControllers(inv).length === 0) return;
  for (const a of await slurm.cancelReboots(computes, AbortSignal.timeout(slurmBudgetMs(inv, computes.length, timeoutMs)))) {
    if (a.outcome === 'cancelled') summary.slurmCancelled.push(a.node);
    else if (a.outcome === 'failed') summary.slurmNotCancelled.push({ node: a.node, error: a.error });
  }
}
