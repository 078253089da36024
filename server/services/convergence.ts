import type { Logger } from '../log.js';
import { nodeLogger } from '../log.js';
import type { ResolvedNode } from '../model/inventory.js';
import { isInstallFailure, type LifecycleState, type PostInstallStage } from '../model/lifecycle.js';
import type { NodeStatus, ObservedStore } from '../store/types.js';
import { classifyApply, statesFailureReason, unreachableReason } from './convergence-classify.js';
import { tcpProbe } from './convergence-probe.js';
import { ConvergenceQueue, REAL_TIMERS, type AttemptContext, type AttemptOutcome, type NodeQueueStatus, type Timers, type TriggerReason } from './convergence-queue.js';
import { configuredAsOf, membershipPeers, peersRenderingHardwareOf, roleChanges, roleSnapshot, roleView, sameRoles, type NodeRoleView } from './convergence-roles.js';
import type { InventoryService } from './inventory-service.js';
import { expectedJoinHosts, k3sJoinWaitTarget, k3sServerHosts, type JoinTarget } from './k3s-join-wait.js';
import { expectationDataOrFailure } from './pillar-files.js';
import { NodeLocks } from './node-locks.js';
import type { ReadinessService } from './readiness-service.js';
import type { StateService } from './state-service.js';

export interface ConvergenceSettings {
  enabled: boolean;
  /** How often nodes in `installed` are probed (TCP connect to their SSH port). */
  probeIntervalMs: number;
  /** Attempts per convergence when the node is unreachable (the first one included). */
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Nodes converged at once. */
  concurrency: number;
  /** The port the default probe connects to (the states' SSH port). */
  sshPort: number;
  /** Default 3 s. */
  probeTimeoutMs?: number;
  /** How long close() waits for running convergences; default 10 s. */
  closeGraceMs?: number;
  /** states.pillar_dir: a node's k3s.server_url may be set in its pillar files, where the node's states read it. */
  pillarDir?: string;
}

export interface ConvergenceDeps {
  inventory: InventoryService;
  store: ObservedStore;
  states: Pick<StateService, 'run'> & Partial<Pick<StateService, 'onHardwareChange'>>;
  readiness: Pick<ReadinessService, 'run'>;
  settings: ConvergenceSettings;
  log: Logger;
  /**
   * Whether rackseed can reach the node at all: by default every node, but the server passes "has a host key
   * pinned at provisioning", so nodes rackseed never installed are neither probed nor converged.
   */
  reachable?: (node: ResolvedNode) => boolean;
  /** The cheap "is it up" check; default a TCP connect to ip:sshPort. */
  probe?: (node: ResolvedNode) => Promise<boolean>;
  /** Whether the K3s server a failed node waits for answers here (default a TCP connect to its host:port). */
  probeJoinTarget?: (target: JoinTarget) => Promise<boolean>;
  timers?: Timers;
  random?: () => number;
  /**
   * One operation at a time per node, shared with state runs and readiness (the server passes one instance). An
   * attempt holds its node's lock from reading the lifecycle to recording the outcome: an operator's apply or
   * readiness check in between would otherwise decide the node's state under it.
   */
  locks?: NodeLocks;
}

/** What a request for convergence did, for the booted endpoint and the log. */
export type ConvergeRequestOutcome =
  | { status: 'queued' | 'coalesced' }
  | { status: 'disabled' | 'not-started' | 'closed' | 'unknown-node' | 'not-installed' | 'unreachable'; message: string };

/** Lifecycle states convergence works in; earlier ones are still provisioning and are left alone. */
const CONVERGIBLE: ReadonlySet<LifecycleState> = new Set(['installed', 'configuring', 'ready', 'failed']);
/** States a role change re-converges (an `installed` node is converged anyway, by the probe or its callback). */
const RECONVERGE_ON_ROLES: ReadonlySet<LifecycleState> = new Set(['configuring', 'ready', 'failed']);
/** Probes in flight at once. */
const PROBE_PARALLEL = 32;

/** Runs `fn` over `items`, PROBE_PARALLEL at a time. */
async function inProbeBatches<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += PROBE_PARALLEL) await Promise.all(items.slice(i, i + PROBE_PARALLEL).map(fn));
}

/**
 * Automatic convergence: when an installed node comes up in its OS (its first-boot unit calls back, or the probe sees
 * its SSH port answer) the node's states are applied and then its readiness is checked, with no operator action. The
 * lifecycle records installed -> configuring -> ready | failed; the evidence is the stored apply and readiness runs,
 * which the `failed` reason names. An unreachable node (still booting, rebooting) is retried with backoff; a node that
 * answered and failed (a state, readiness, the host key) is not: the operator fixes and re-runs it, or the next role
 * change does (a K3s node that failed because the server it joins did not answer: the probe, once that answers). A
 * role change in the inventory re-converges the nodes it touches.
 */
export class ConvergenceService {
  private readonly queue: ConvergenceQueue;
  private readonly timers: Timers;
  private readonly locks: NodeLocks;
  private readonly probe: (node: ResolvedNode) => Promise<boolean>;
  private readonly probeJoinTarget: (target: JoinTarget) => Promise<boolean>;
  private readonly reachable: (node: ResolvedNode) => boolean;
  private roles: Map<string, NodeRoleView>;
  private started = false;
  private closed = false;
  private probeTimer: unknown;
  private probing: Promise<void> | undefined;
  /** Nodes the last probe round found configuring with no convergence queued. */
  private configuringIdle = new Set<string>();

  constructor(private readonly deps: ConvergenceDeps) {
    const { settings } = deps;
    this.locks = deps.locks ?? new NodeLocks();
    this.timers = deps.timers ?? REAL_TIMERS;
    this.reachable = deps.reachable ?? (() => true);
    const probeTimeoutMs = settings.probeTimeoutMs ?? 3_000;
    this.probe = deps.probe ?? ((node) => (node.ip ? tcpProbe(node.ip, settings.sshPort, probeTimeoutMs) : Promise.resolve(false)));
    this.probeJoinTarget = deps.probeJoinTarget ?? ((target) => tcpProbe(target.host, target.port, probeTimeoutMs));
    this.queue = new ConvergenceQueue({
      concurrency: settings.concurrency,
      maxAttempts: settings.maxAttempts,
      backoff: { baseMs: settings.backoffBaseMs, maxMs: settings.backoffMaxMs },
      attempt: (node, ctx) => this.converge(node, ctx),
      onError: (node, err) => nodeLogger(deps.log, { name: node }).error({ err }, 'convergence crashed'),
      onRetryScheduled: (node, r) => nodeLogger(deps.log, { name: node }).info({ attempt: r.attempt, delayMs: r.delayMs, reason: r.reason }, 'node not reachable yet: retrying'),
      timers: this.timers,
      ...(deps.random ? { random: deps.random } : {}),
    });
    // Nodes that rendered slurm.conf without a node's hardware (or with its old hardware) render it again, after any
    // apply that stored it: this convergence's, or an operator's `rackseed state apply`.
    deps.states.onHardwareChange?.((name) => {
      if (!this.active()) return;
      void this.reconverge(peersRenderingHardwareOf(deps.inventory.inventory, name), 'peer-hardware').catch((err: unknown) => deps.log.error({ err, node: name }, 'hardware change: could not queue re-convergence'));
    });
    // Kept current from construction on, so the first change after start compares against the right version.
    this.roles = roleSnapshot(deps.inventory.inventory);
    deps.inventory.onChange((inv) => {
      const next = roleSnapshot(inv);
      const changes = roleChanges(this.roles, next);
      const peers = membershipPeers(this.roles, next);
      this.roles = next;
      if ((changes.length === 0 && peers.length === 0) || !this.active()) return;
      // Not awaited: the inventory reload must not wait on the store, and a failure here must not fail the reload.
      void this.reconverge(changes.map((c) => c.node))
        .then(() => this.reconverge(peers, 'peer-membership'))
        .catch((err: unknown) => deps.log.error({ err }, 'role change: could not queue re-convergence'));
    });
  }

  /** Begins probing and taking triggers; resumes convergences a restart interrupted (nodes left in `configuring`). */
  async start(): Promise<void> {
    if (this.started || this.closed) return;
    this.started = true;
    if (!this.deps.settings.enabled) {
      this.deps.log.info('automatic convergence is disabled (convergence.enabled: false)');
      return;
    }
    const statuses = await this.deps.store.listNodes();
    for (const status of statuses) {
      if (status.state === 'configuring') await this.request(status.id, 'resume');
    }
    // Role changes live in memory between inventory versions: one made while the server was down shows only here.
    await this.reconvergeIfConfiguredOtherwise(statuses.filter((s) => s.state !== 'configuring').map((s) => s.id));
    this.scheduleProbe(0);
  }

  /**
   * Re-converges those of `names` whose last apply configured them with other roles or another group than the
   * inventory gives them now: after a restart, or when a reimage that moved them (reimage --group) is cancelled.
   */
  async reconvergeIfConfiguredOtherwise(names: readonly string[]): Promise<void> {
    const inv = this.deps.inventory.inventory;
    const changed: string[] = [];
    for (const name of names) {
      const node = inv.nodes.get(name);
      if (!node) continue;
      // The newest apply that says what it configured: one that never recorded its end (closed as abandoned at the
      // start) says nothing, and must not hide the change from the one before it.
      const applies = await this.deps.store.listRuns({ node: name, kind: 'apply', limit: 20 });
      const configured = applies.map((r) => configuredAsOf(r.summary)).find((c) => c !== undefined);
      if (configured && !sameRoles(configured, roleView(node))) changed.push(name);
    }
    if (changed.length > 0) await this.reconverge(changed);
  }

  /**
   * Asks for a node's convergence. Refused for a node not in the inventory, one still provisioning, and one rackseed
   * cannot reach (no pinned host key); otherwise queued, or joined to the convergence already under way.
   */
  async request(name: string, reason: TriggerReason): Promise<ConvergeRequestOutcome> {
    // An operator's request is not automatic: it runs even where automatic convergence is off.
    if (!this.deps.settings.enabled && reason !== 'operator') return { status: 'disabled', message: 'automatic convergence is disabled on this server' };
    if (this.closed) return { status: 'closed', message: 'the server is shutting down' };
    if (!this.started) return { status: 'not-started', message: 'convergence has not started yet' };
    const node = this.deps.inventory.inventory.nodes.get(name);
    if (!node) return { status: 'unknown-node', message: `node ${name} is not in the inventory` };
    if (!this.reachable(node)) return { status: 'unreachable', message: `node ${name} has no host key pinned by rackseed: it was not provisioned by this server` };
    const status = await this.deps.store.getNode(name);
    if (!status || !CONVERGIBLE.has(status.state)) {
      return { status: 'not-installed', message: `node ${name} is ${status?.state ?? 'unknown to the store'}: it is converged once it is installed` };
    }
    if (isInstallFailure(status)) {
      return { status: 'not-installed', message: `node ${name} failed to install (stage ${status.stage}): reimage it; it is converged once it is installed` };
    }
    const outcome = this.queue.trigger(name, reason);
    if (outcome === 'closed') return { status: 'closed', message: 'the server is shutting down' };
    nodeLogger(this.deps.log, { name }).info({ reason, outcome }, 'convergence requested');
    return { status: outcome };
  }

  /** Whether the node is queued, converging or waiting for a retry. */
  isBusy(name: string): boolean {
    return this.queue.has(name);
  }

  /** Nodes queued, converging or waiting for a retry. */
  status(): NodeQueueStatus[] {
    return this.queue.status();
  }

  /** Resolves when nothing is queued, running or waiting for a retry (tests, and a clean shutdown). */
  whenIdle(): Promise<void> {
    return this.queue.whenIdle();
  }

  /**
   * Runs one probe round now (the timer does this every probe interval). It also resumes nodes left `configuring`
   * with no convergence queued, seen so in two rounds in a row (an operator's `ready --check` is configuring for a
   * moment too): a convergence whose retries ran out while the store failed, or one a crash cut short.
   */
  async probeInstalled(): Promise<void> {
    if (!this.active()) return;
    const inv = this.deps.inventory.inventory;
    const statuses = await this.deps.store.listNodes();
    // A node whose lock is held is being worked on (a readiness check of a node failed in readiness records
    // configuring first, and a hung nvidia-smi takes minutes): not an orphan.
    const idleConfiguring = statuses.filter((s) => s.state === 'configuring' && !this.queue.has(s.id) && !this.locks.isBusy(s.id)).map((s) => s.id);
    const orphans = idleConfiguring.filter((name) => this.configuringIdle.has(name));
    this.configuringIdle = new Set(idleConfiguring.filter((name) => !orphans.includes(name)));
    for (const name of orphans) {
      nodeLogger(this.deps.log, { name }).warn('left configuring with no convergence running: resuming it');
      await this.request(name, 'resume');
    }
    const candidates = statuses
      .filter((s) => s.state === 'installed' && !this.queue.has(s.id))
      .flatMap((s) => {
        const node = inv.nodes.get(s.id);
        return node && this.reachable(node) ? [node] : [];
      });
    await inProbeBatches(candidates, async (node) => {
      if (await this.probe(node).catch(() => false)) await this.request(node.name, 'probe');
    });
    await this.probeK3sJoinTargets(statuses);
  }

  /**
   * K3s nodes that failed because the server they join did not answer (`k3s-join-server`; their own unit keeps trying
   * and joins by itself once it does): the address their reason names is probed from here, and when it answers
   * they are converged again, to find their K3s joined. Driven by the server that manages the node, from what the
   * store says, so it needs no event from whichever server saw the K3s server come up, and it also covers a server
   * that is `ready` in rackseed but was down (a reboot) while they converged. At most once per probe round per node;
   * one that fails so again (it cannot reach an address this server reaches) is tried again next round.
   */
  private async probeK3sJoinTargets(statuses: readonly NodeStatus[]): Promise<void> {
    const inv = this.deps.inventory.inventory;
    const servers = k3sServerHosts(inv);
    const waiting = new Map<string, { target: JoinTarget; nodes: string[] }>();
    for (const s of statuses) {
      if (s.state !== 'failed' || s.stage !== 'states' || s.reimageRequested || this.queue.has(s.id)) continue;
      const target = k3sJoinWaitTarget(s.reason);
      const node = inv.nodes.get(s.id);
      if (!target || !node || !this.reachable(node)) continue;
      // The node's whole pillar, as its states saw it: a server_url set only in a pillar file is where it joins.
      const data = expectationDataOrFailure(inv, node, this.deps.settings.pillarDir).data;
      if (!expectedJoinHosts(inv, node, servers, data).has(target.host)) {
        nodeLogger(this.deps.log, { name: s.id }).warn({ joins: `${target.host}:${target.port}` }, 'failed waiting for a K3s server that is not one of its K3s servers in the inventory: not probed');
        continue;
      }
      const key = `${target.host} ${target.port}`;
      const entry = waiting.get(key) ?? { target, nodes: [] };
      entry.nodes.push(s.id);
      waiting.set(key, entry);
    }
    await inProbeBatches([...waiting.values()], async ({ target, nodes }) => {
      if (!(await this.probeJoinTarget(target).catch(() => false))) return;
      const joins = `${target.host}:${target.port}`;
      for (const name of nodes) {
        const r = await this.request(name, 'k3s-server-answers');
        const log = nodeLogger(this.deps.log, { name });
        if ('message' in r) log.info({ outcome: r.status, joins, why: r.message }, 'the K3s server this node failed waiting for answers, but it is not converged');
        else log.info({ outcome: r.status, joins }, 'the K3s server this node failed waiting for answers: converging it again');
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timers.clearTimeout(this.probeTimer);
    await this.probing?.catch(() => undefined);
    await this.queue.close(this.deps.settings.closeGraceMs ?? 10_000);
  }

  private active(): boolean {
    return this.started && !this.closed && this.deps.settings.enabled;
  }

  private scheduleProbe(delayMs: number): void {
    if (!this.active()) return;
    this.probeTimer = this.timers.setTimeout(() => {
      // The next round is scheduled when this one ends: a slow round never overlaps the next.
      this.probing = this.probeInstalled()
        .catch((err: unknown) => this.deps.log.warn({ err }, 'probe round failed'))
        .finally(() => {
          this.probing = undefined;
          this.scheduleProbe(this.deps.settings.probeIntervalMs);
        });
    }, delayMs);
  }

  private async reconverge(names: string[], reason: 'roles' | 'peer-hardware' | 'peer-membership' = 'roles'): Promise<void> {
    for (const name of names) {
      const status = await this.deps.store.getNode(name);
      if (!status || !RECONVERGE_ON_ROLES.has(status.state)) continue;
      if (status.reimageRequested) {
        // `reimage --group` moves a node after marking it: it installs with its new roles; its old OS gets nothing.
        this.deps.log.info({ node: name, reason }, 'reimage pending: not re-converged on its old OS');
        continue;
      }
      const r = await this.request(name, reason);
      const why = { roles: 'roles changed', 'peer-hardware': "a peer's hardware changed", 'peer-membership': 'a node joined or left its role' }[reason];
      this.deps.log.info({ node: name, outcome: r.status, reason }, `${why}: re-converging`);
    }
  }

  /** One attempt: configuring -> apply -> (no state failed) readiness, or failed with the reason and the run. */
  private converge(name: string, ctx: AttemptContext): Promise<AttemptOutcome> {
    return this.locks.withNode(name, () => this.convergeLocked(name, ctx));
  }

  private async convergeLocked(name: string, ctx: AttemptContext): Promise<AttemptOutcome> {
    const { store, log: rootLog } = this.deps;
    const log = nodeLogger(rootLog, { name });
    const node = this.deps.inventory.inventory.nodes.get(name);
    if (!node) {
      log.info('node left the inventory: convergence dropped');
      return { kind: 'done' };
    }
    const before = await store.getNode(name);
    if (!before || !CONVERGIBLE.has(before.state) || isInstallFailure(before)) {
      // Reimaged since it was queued (the installer owns it now), or its install failed: converged once installed.
      log.info({ state: before?.state, stage: before?.stage }, 'node is not installed: convergence dropped');
      return { kind: 'done' };
    }
    if (before.reimageRequested) {
      // Its next boot reinstalls it (perhaps into another group, by reimage --group): the old OS gets nothing more.
      log.info('reimage pending: convergence dropped');
      return { kind: 'done' };
    }
    if (before.state !== 'configuring') await this.record(name, { type: 'configure_started' }, log);
    log.info({ attempt: ctx.attempt, of: ctx.maxAttempts, reasons: ctx.reasons, roles: node.roles }, 'converging');

    let [report] = await this.deps.states.run([node], 'apply', undefined, { lockHeld: true });
    if (!report) return { kind: 'done' };
    if (report.hardwareChangedDuringRun && classifyApply(report).kind === 'ok') {
      // Its states rendered its own slurm.conf and gres.conf from the hardware of before (no GPUs until the driver
      // the run installed was loaded): once more, with what the node has now. Once: a second change is not chased.
      log.info({ applyRun: report.runId }, 'hardware changed during the apply (a driver installed?): applying again with it');
      [report] = await this.deps.states.run([node], 'apply', undefined, { lockHeld: true });
      if (!report) return { kind: 'done' };
    }
    const verdict = classifyApply(report);
    if (verdict.kind !== 'ok' && !(await this.stillConfiguring(name, log))) return { kind: 'done' };
    if (verdict.kind === 'transient') {
      if (ctx.attempt < ctx.maxAttempts) return { kind: 'retry', reason: verdict.reason };
      await this.record(name, { type: 'failed', reason: unreachableReason(ctx.attempt, verdict.reason, report.runId), stage: 'states' satisfies PostInstallStage }, log);
      log.warn({ attempts: ctx.attempt, reason: verdict.reason }, 'node stayed unreachable: convergence failed');
      return { kind: 'done' };
    }
    if (verdict.kind === 'permanent') {
      await this.record(name, { type: 'failed', reason: statesFailureReason(report), stage: 'states' satisfies PostInstallStage }, log);
      log.warn({ runId: report.runId, reason: verdict.reason }, 'states failed: convergence stopped (not retried)');
      return { kind: 'done' };
    }
    // ReadinessService moves the lifecycle itself: configuring -> ready, or failed with stage readiness.
    const [ready] = await this.deps.readiness.run([node], undefined, { byConvergence: true });
    log.info({ applyRun: report.runId, readinessRun: ready?.runId, ready: ready?.ready, state: ready?.state, note: ready?.lifecycleNote }, 'converged');
    return { kind: 'done' };
  }

  /**
   * A run can take minutes: a node reimaged meanwhile (its reboot cut the run short) is installing or installed
   * again, and this run's failure, about the old OS, is not to be recorded on it.
   */
  private async stillConfiguring(name: string, log: Logger): Promise<boolean> {
    const now = await this.deps.store.getNode(name);
    if (now?.state === 'configuring') return true;
    log.info({ state: now?.state }, 'node left configuring during its states run (reimaged?): the run\'s failure is not recorded');
    return false;
  }

  private async record(name: string, event: Parameters<ObservedStore['recordEvent']>[0]['event'], log: Logger): Promise<void> {
    const r = await this.deps.store.recordEvent({ node: name, event });
    if (!r.ok) log.warn({ event: event.type, error: r.error }, 'lifecycle event refused');
  }
}
