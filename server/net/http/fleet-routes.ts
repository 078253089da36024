import express, { Router, type Request, type Response } from 'express';
import { resolveTargets } from '../../inventory/select.js';
import { nodeLogger, type Logger } from '../../log.js';
import type { BmcBootMode, ResolvedNode } from '../../model/inventory.js';
import { WIPE_MODES, type WipeMode } from '../../model/lifecycle.js';
import { countPowerAction } from '../../metrics/runtime-metrics.js';
import type { BmcCredentials } from '../../power/credentials-file.js';
import { loadBmcCredentials } from '../../power/credentials.js';
import { bootModeFromFacts } from '../../power/boot-mode.js';
import { DEFAULT_POWER_OPTIONS, powerNodes, type PowerOptions } from '../../power/power-nodes.js';
import { sshReboot } from '../../power/ssh-reboot.js';
import { DISRUPTIVE_POWER_ACTIONS, isPowerAction, type PowerAction, type PowerResult } from '../../power/types.js';
import { NodeLocks } from '../../services/node-locks.js';
import { cancelReimage, cancelWipe, executeReimage, withdrawSlurmReboots, planReimage, REIMAGE_INTO_ROLE_HINT, type Rebooter, type ReimageProgress, type ReimageRequest } from '../../services/reimage.js';
import type { InventoryService } from '../../services/inventory-service.js';
import { NodeIdentity } from '../../services/node-identity.js';
import { sshTransportFactory, type TransportFactory } from '../../services/node-transport.js';
import { slurmRebooter } from '../../services/slurm-reboot.js';
import { executeRemoval, planRemoval } from '../../services/node-removal.js';
import type { ObservedStore } from '../../store/types.js';
import { badRequest } from './errors.js';
import { streamNdjson } from './ndjson.js';

export interface FleetDeps {
  /** The inventory, and the edit a reimage into another group makes to it. */
  inventory: Pick<InventoryService, 'inventory' | 'moveToGroup' | 'removeNodes'>;
  /** The server's node identities (host keys and pins), which `node remove` forgets; default: one over `dataDir`. */
  identity?: Pick<NodeIdentity, 'forget'>;
  /** Releases a DHCP lease; in full DHCP mode through the lease book, which remembers leases. Default: the store. */
  releaseLease?: (ip: string, mac: string) => Promise<void>;
  /** Nodes whose pending reimage was withdrawn: one whose move back failed runs its old OS under a new group. */
  onReimageCancelled?: (nodes: string[]) => Promise<void>;
  /**
   * The per-node operation locks the state, readiness, audit and convergence services share (server/main.ts):
   * `node remove` refuses a node one of them holds, and holds them while it removes. Default: locks of its own
   * (tests without those services).
   */
  locks?: NodeLocks;
  store: ObservedStore;
  /** Holds secrets/bmc.yaml and the SSH key and known_hosts used for reboots. */
  dataDir: string;
  log: Logger;
  /** BMC batch size, timeout and drivers (tests swap the drivers). */
  power?: Partial<PowerOptions>;
  /** The nodes' sshd port (states.ssh_port), for the SSH reboot; default 22. */
  sshPort?: number;
  /** SSH reboot of a running node; tests replace it. */
  sshReboot?: (node: string, ip: string, signal: AbortSignal) => Promise<void>;
  ssh?: { concurrency?: number; timeoutMs?: number };
  /** How `reimage --when-idle` reaches the Slurm controller; default: SSH with the server's key and the pinned host key. */
  transportFor?: TransportFactory;
}

function stringList(v: unknown, name: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((t): t is string => typeof t === 'string')) {
    throw badRequest(`"${name}" must be a non-empty list of strings (node names, hostlists, group:NAME, role:NAME, key=value)`);
  }
  return v;
}

/** Reimage marks with their group moves, and cancels, one at a time (see the reimage route). */
const MARKS = 'reimage-marks';

/** A destructive request must do what was asked: a misspelt key ("Group") is refused, not ignored. */
function onlyKeys(body: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw badRequest(`unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (expected: ${allowed.join(', ')})`);
}

/** A body key that may be absent but, when present, must be a boolean. */
function optionalBoolean(body: Record<string, unknown>, key: string): void {
  if (body[key] !== undefined && typeof body[key] !== 'boolean') throw badRequest(`"${key}" must be true or false`);
}

const wantsStream = (req: Request) => (req.get('accept') ?? '').includes('application/x-ndjson');

function tally(action: PowerAction, r: PowerResult): void {
  countPowerAction(action, r.ok ? 'ok' : r.timedOut ? 'timeout' : 'failed');
}

/** For a network boot override: the firmware mode each node (without one in the inventory) last netbooted in. */
async function bootModesSeen(store: ObservedStore, nodes: readonly ResolvedNode[]): Promise<Map<string, BmcBootMode>> {
  const seen = new Map<string, BmcBootMode>();
  if (!nodes.some((n) => n.bmc !== undefined && n.bmc.bootMode === undefined)) return seen;
  const wanted = new Set(nodes.map((n) => n.name));
  for (const status of await store.listNodes()) {
    const mode = wanted.has(status.id) ? bootModeFromFacts(status.facts) : undefined;
    if (mode) seen.set(status.id, mode);
  }
  return seen;
}

/**
 * Fleet operations under /api/v1 (behind the admin token): POST /reimage, /wipe and /power. Both answer JSON, or, when
 * the client accepts application/x-ndjson, stream one `{type: "progress", ...}` line per step as it happens and end
 * with one `{type: "result", ...}` line (what the JSON answer would have been).
 */
export function fleetRoutes(deps: FleetDeps): Router {
  const r = Router();
  r.use(express.json({ limit: '1mb' }));
  const marks = new NodeLocks();
  const powerOptions: PowerOptions = { ...DEFAULT_POWER_OPTIONS, ...deps.power };
  const identity = deps.identity ?? new NodeIdentity(deps.dataDir);
  const nodeLocks = deps.locks ?? new NodeLocks();

  const slurm = slurmRebooter({
    inventory: () => deps.inventory.inventory,
    transportFor: deps.transportFor ?? sshTransportFactory({ identity: new NodeIdentity(deps.dataDir), sshPort: deps.sshPort ?? 22, connectTimeoutMs: 10_000 }),
    timeoutMs: deps.ssh?.timeoutMs ?? 30_000,
  });
  const rebooter: Rebooter = {
    slurm,
    ssh: deps.sshReboot ?? ((_node, ip, signal) => sshReboot(deps.dataDir, ip, signal, deps.sshPort ?? 22)),
    sshConcurrency: deps.ssh?.concurrency ?? 32,
    sshTimeoutMs: deps.ssh?.timeoutMs ?? 30_000,
    underWay: new Set<string>(),
    async bmcPxe(nodes: ResolvedNode[], onResult) {
      let creds: BmcCredentials;
      try {
        creds = loadBmcCredentials(deps.dataDir);
      } catch (e) {
        // A bad credentials file fails the BMC reboots, not the marking that already happened.
        const results = nodes.map((n): PowerResult => ({ node: n.name, ok: false, error: (e as Error).message, durationMs: 0 }));
        results.forEach(onResult);
        return results;
      }
      const bootModes = await bootModesSeen(deps.store, nodes);
      return powerNodes(nodes, 'pxe', creds, { ...powerOptions, bootModesSeen: bootModes }, (res) => {
        tally('pxe', res);
        onResult(res);
      });
    },
  };

  /** A dry run's answer: JSON, or the one result line of an NDJSON stream for a client that asked for one. */
  const answerOnce = async (req: Request, res: Response, result: unknown) => {
    if (wantsStream(req)) await streamNdjson(res, deps.log, async () => result);
    else res.json(result);
  };

  r.post('/reimage/cancel', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    onlyKeys(body, ['targets']);
    const moveBack = (names: readonly string[], group: string) => deps.inventory.moveToGroup(names, group, { dryRun: false });
    const targets = stringList(body.targets, 'targets');
    const summary = await marks.withNode(MARKS, () => cancelReimage(deps.inventory.inventory, deps.store, targets, moveBack));
    await withdrawSlurmReboots(deps.inventory.inventory, summary, slurm, deps.ssh?.timeoutMs ?? 30_000);
    deps.log.info({ cancelled: summary.cancelled.length, notPending: summary.notPending.length, restored: summary.restored.length }, 'pending reimages cancelled');
    if (summary.notRestored.length > 0) deps.log.error({ notRestored: summary.notRestored }, 'cancelled reimages whose nodes could not be moved back into their old group');
    for (const node of summary.slurmCancelled) nodeLogger(deps.log, { name: node }).info('Slurm reboot of a --when-idle reimage withdrawn');
    for (const n of summary.slurmNotCancelled) nodeLogger(deps.log, { name: n.node }).error({ reason: n.error }, 'Slurm reboot of a --when-idle reimage could not be withdrawn: Slurm still drains and reboots it');
    if (summary.cancelled.length > 0 && deps.onReimageCancelled) {
      // Not awaited: the answer does not wait on the store reads; a failure is logged, the cancel stands.
      void deps.onReimageCancelled(summary.cancelled).catch((err: unknown) => deps.log.error({ err }, 'could not check cancelled nodes for a role change'));
    }
    res.json(summary);
  });

  r.post('/reimage', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (body.role !== undefined) throw badRequest(REIMAGE_INTO_ROLE_HINT);
    onlyKeys(body, ['targets', 'group', 'confirm', 'force', 'whenIdle']);
    if (body.group !== undefined && (typeof body.group !== 'string' || body.group === '')) throw badRequest('"group" must be the name of an inventory group');
    const group = body.group as string | undefined;
    optionalBoolean(body, 'confirm');
    optionalBoolean(body, 'force');
    optionalBoolean(body, 'whenIdle');
    // Targets become names before any move: group:OLD or role:X would select other nodes once the move is made.
    const names = resolveTargets(deps.inventory.inventory, stringList(body.targets, 'targets')).map((n) => n.name);
    const request: ReimageRequest = { targets: names, ...(group !== undefined ? { group } : {}), ...(body.force === true ? { force: true } : {}), ...(body.whenIdle === true ? { whenIdle: true } : {}) };
    const statuses = new Map((await deps.store.listNodes()).map((s) => [s.id, s]));
    // Planning errors (unknown target or group, a range member that cannot move alone) are answered here, with their
    // own status, before anything is written.
    const moves = group !== undefined ? await deps.inventory.moveToGroup(names, group, { dryRun: true }) : [];
    const inv = deps.inventory.inventory;
    const plan = planReimage(inv, statuses, request, new Map(moves.map((m) => [m.node, m.from])));
    if (body.confirm !== true) {
      const result = { type: 'result', dryRun: true, plan };
      await answerOnce(req, res, result);
      return;
    }
    deps.log.info({ targets: names.length, nodes: plan.counts.toMark, group }, 'reimage requested');
    // One line per machine: the log must say which ones were sent to be wiped, and how each is to be rebooted.
    for (const n of plan.nodes) {
      nodeLogger(deps.log, { name: n.node }).info({ group: n.group, ...(n.fromGroup ? { fromGroup: n.fromGroup } : {}), state: n.state, reboot: n.reboot, ...(n.skip ? { skip: n.skip } : {}) }, 'reimage requested for node');
    }
    // The move is made after the marks, so convergence sees a pending reimage rather than a role change to apply to
    // the old OS; nodes the lifecycle refused to mark keep their group. Skipped nodes (never installed) move too.
    const skipped = plan.nodes.filter((n) => n.skip).map((n) => n.node);
    let moved: Array<{ node: string; from: string }> = [];
    const moveMarked = async (marked: readonly string[]) => {
      if (group === undefined) return;
      moved = await deps.inventory.moveToGroup([...marked, ...skipped], group, { dryRun: false });
      if (moved.length > 0) deps.log.info({ group, moved }, 'nodes moved into another group for their reimage');
    };
    const run = async (send: (line: unknown) => void) => {
      const summary = await markAndReboot(plan, send, moveMarked);
      return { type: 'result', dryRun: false, counts: plan.counts, summary: { ...summary, ...(group !== undefined ? { moved: moved.map((m) => ({ ...m, to: group })) } : {}) } };
    };
    if (wantsStream(req)) await streamNdjson(res, deps.log, run);
    else res.json(await run(() => undefined));
  });

  /** The marks (with `afterMark`, under the marks lock) and the reboots of a confirmed reimage or wipe. */
  const markAndReboot = async (plan: ReturnType<typeof planReimage>, send: (line: unknown) => void, afterMark?: (marked: readonly string[]) => Promise<void>) => {
    const what = plan.wipe !== undefined ? 'wipe' : 'reimage';
    const onProgress = (p: ReimageProgress) => {
      if (p.node !== undefined && p.ok !== undefined) {
        const log = nodeLogger(deps.log, { name: p.node });
        if (p.underWay) log.info({ method: p.method }, `${what} reboot already under way in another request: not sent again`);
        else if (p.ok && p.method === 'slurm') log.info({ method: p.method, slurmState: p.slurmState }, `${what} reboot asked of Slurm: the node reboots once its jobs are done`);
        else if (p.ok) log.info({ method: p.method }, `${what} reboot sent`);
        else log.warn({ method: p.method, reason: p.failure }, `${what} reboot failed`);
      }
      send({ type: 'progress', ...p });
    };
    // Marks and moves are one step for a cancel: it waits for them (not for the reboots), else it could read the
    // inventory before the move and the pending mark after it, and leave the node in its new group unmarked.
    const release = await marks.acquire(MARKS);
    let summary: Awaited<ReturnType<typeof executeReimage>>;
    try {
      summary = await executeReimage(plan, deps.inventory.inventory, deps.store, rebooter, onProgress, async (marked) => {
        try {
          await afterMark?.(marked);
        } finally {
          release();
        }
      });
    } finally {
      release();
    }
    deps.log.info(summary.counts, `${what} done`);
    return summary;
  };

  /**
   * POST /wipe {targets, mode, force?, confirm?}: erase the nodes' disks on their next network boot, then reboot them
   * into it as a reimage does. Without confirm a dry run: which nodes, and how each would be rebooted.
   */
  r.post('/wipe', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    onlyKeys(body, ['targets', 'mode', 'confirm', 'force']);
    if (typeof body.mode !== 'string' || !(WIPE_MODES as readonly string[]).includes(body.mode)) throw badRequest(`"mode" must be ${WIPE_MODES.map((m) => JSON.stringify(m)).join(' or ')}`);
    const mode = body.mode as WipeMode;
    optionalBoolean(body, 'confirm');
    optionalBoolean(body, 'force');
    const names = resolveTargets(deps.inventory.inventory, stringList(body.targets, 'targets')).map((n) => n.name);
    const statuses = new Map((await deps.store.listNodes()).map((s) => [s.id, s]));
    const plan = planReimage(deps.inventory.inventory, statuses, { targets: names, wipe: mode, ...(body.force === true ? { force: true } : {}) });
    if (body.confirm !== true) {
      const result = { type: 'result', dryRun: true, plan };
      await answerOnce(req, res, result);
      return;
    }
    deps.log.warn({ targets: names.length, nodes: plan.counts.toMark, mode }, 'wipe requested');
    for (const n of plan.nodes) {
      nodeLogger(deps.log, { name: n.node }).warn({ mode, state: n.state, reboot: n.reboot, ...(n.skip ? { skip: n.skip } : {}) }, 'wipe requested for node');
    }
    const run = async (send: (line: unknown) => void) => ({ type: 'result', dryRun: false, counts: plan.counts, summary: await markAndReboot(plan, send) });
    if (wantsStream(req)) await streamNdjson(res, deps.log, run);
    else res.json(await run(() => undefined));
  });

  r.post('/wipe/cancel', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    onlyKeys(body, ['targets', 'force']);
    optionalBoolean(body, 'force');
    const targets = stringList(body.targets, 'targets');
    const summary = await marks.withNode(MARKS, () => cancelWipe(deps.inventory.inventory, deps.store, targets, body.force === true));
    deps.log.info({ cancelled: summary.cancelled.length, notPending: summary.notPending.length, underWay: summary.underWay.length, abandoned: summary.abandoned.length }, 'pending wipes cancelled');
    for (const node of summary.cancelled) nodeLogger(deps.log, { name: node }).info('pending wipe cancelled');
    for (const node of summary.abandoned) nodeLogger(deps.log, { name: node }).warn('wipe under way abandoned: failed in stage wipe, its disks in an unknown state');
    res.json(summary);
  });

  /**
   * POST /nodes/remove {names, force?, confirm?}: decommissioning. Without confirm a dry run: each node, its state and
   * the entry that declares it; the edit is checked (a range member alone is refused) but nothing is written.
   */
  r.post('/nodes/remove', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    onlyKeys(body, ['names', 'force', 'confirm']);
    optionalBoolean(body, 'confirm');
    optionalBoolean(body, 'force');
    const exprs = stringList(body.names, 'names');
    // Under the reimage lock: a reimage must not mark, move or reboot a node between its plan and its removal.
    const release = await marks.acquire(MARKS);
    try {
      const statuses = new Map((await deps.store.listNodes()).map((s) => [s.id, s]));
      const targets = planRemoval(deps.inventory.inventory, statuses, exprs, body.force === true, (node) => nodeLocks.isBusy(node));
      const inInventory = targets.filter((t) => t.inInventory).map((t) => t.node);
      const entries = new Map((inInventory.length > 0 ? await deps.inventory.removeNodes(inInventory, { dryRun: true }) : []).map((e) => [e.node, e.entry]));
      for (const t of targets) if (entries.has(t.node)) t.entry = entries.get(t.node)!;
      if (body.confirm !== true) {
        res.json({ dryRun: true, nodes: targets });
        return;
      }
      const summary = await executeRemoval(targets, {
        inventory: deps.inventory,
        store: deps.store,
        forgetIdentity: (node) => identity.forget(node),
        releaseLease: deps.releaseLease ?? (async (ip, mac) => void (await deps.store.releaseLease(ip, mac))),
        locks: nodeLocks,
      }, body.force === true);
      for (const n of summary.removed) {
        const log = nodeLogger(deps.log, { name: n.node });
        const fields = { state: n.state, ...(n.busy ? { busy: true } : {}), entry: n.entry, keptAs: n.keptAs, releasedLeases: n.releasedLeases, hostKeyForgotten: n.hostKeyForgotten };
        if (n.errors.length > 0) log.error({ ...fields, errors: n.errors }, 'node removed from the inventory, but not all that the server keeps about it could be cleared');
        else log.info(fields, 'node removed');
      }
      if (summary.inventoryProblem) deps.log.error({ problem: summary.inventoryProblem }, 'node removal: the inventory is written and in use, but what follows its reload failed');
      res.json({ dryRun: false, ...summary });
    } finally {
      release();
    }
  });

  r.post('/power', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    onlyKeys(body, ['action', 'targets', 'confirm']);
    if (!isPowerAction(body.action)) throw badRequest('"action" must be one of status, on, off, cycle, pxe');
    const action = body.action;
    const nodes = resolveTargets(deps.inventory.inventory, stringList(body.targets, 'targets'));
    optionalBoolean(body, 'confirm');
    if (DISRUPTIVE_POWER_ACTIONS.includes(action) && body.confirm !== true) {
      // Switching off or restarting running machines kills their jobs: without confirm, only say what would happen.
      const plan = nodes.map((n) => ({ node: n.name, ...(n.bmc ? { bmc: { address: n.bmc.address, kind: n.bmc.kind } } : { problem: 'no BMC in the inventory' }) }));
      const result = { type: 'result', dryRun: true, action, plan };
      await answerOnce(req, res, result);
      return;
    }
    const creds = loadBmcCredentials(deps.dataDir);
    if (action !== 'status') deps.log.info({ action, nodes: nodes.length }, 'power action');
    const run = async (send: (line: unknown) => void) => {
      let done = 0;
      const bootModes = action === 'pxe' ? await bootModesSeen(deps.store, nodes) : undefined;
      const results = await powerNodes(nodes, action, creds, { ...powerOptions, ...(bootModes ? { bootModesSeen: bootModes } : {}) }, (result) => {
        tally(action, result);
        const log = nodeLogger(deps.log, { name: result.node });
        const fields = { action, ...(result.state ? { state: result.state } : {}), ...(result.error ? { reason: result.error } : {}), ...(result.timedOut ? { timedOut: true } : {}), ms: result.durationMs };
        if (!result.ok) log.warn(fields, 'power action failed');
        else if (action === 'status') log.debug(fields, 'power status');
        else log.info(fields, 'power action done');
        done += 1;
        send({ type: 'progress', phase: 'power', done, total: nodes.length, result });
      });
      const failed = results.filter((x) => !x.ok).length;
      return { type: 'result', dryRun: false, action, results, counts: { ok: results.length - failed, failed } };
    };
    if (wantsStream(req)) await streamNdjson(res, deps.log, run);
    else res.json(await run(() => undefined));
  });

  return r;
}
