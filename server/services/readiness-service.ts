import { NodeLocks } from './node-locks.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import { nodeLogger } from '../log.js';
import { countReadinessFailure, observeRun } from '../metrics/runtime-metrics.js';
import type { ResolvedNode } from '../model/inventory.js';
import { isInstallFailure, type LifecycleState, type PostInstallStage } from '../model/lifecycle.js';
import { buildCheckContext } from '../readiness/context.js';
import { collectEvidence, verdict } from '../readiness/engine.js';
import { pillarEvidence, sshEvidence } from '../readiness/roles/base.js';
import type { Evidence } from '../readiness/types.js';
import { runFleet } from '../state/run/fleet.js';
import { collectFacts } from '../state/collect-facts.js';
import type { NodeFacts, Transport } from '../state/types.js';
import type { ObservedStore, Run } from '../store/types.js';
import type { InventoryService } from './inventory-service.js';
import type { NodeIdentity } from './node-identity.js';
import { sshTransportFactory, type TransportFactory } from './node-transport.js';
import { expectationDataOrFailure } from './pillar-files.js';
import { describeFailure } from '../model/errors.js';
import { finishRunDurably, runOwner } from './run-record.js';

export interface ReadinessSettings {
  /** Nodes checked at once. */
  concurrency: number;
  /** Per-command timeout (each check's collection command, fact collection). */
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  sshPort: number;
  /** Pillar files (states.pillar_dir): values set there are what the checks expect, as the states applied them. */
  pillarDir?: string;
  /** slurm.drain_unready (see CheckContext). */
  slurmDrainUnready?: boolean;
}

/** One node's readiness outcome, as stored (summary + details) and as the API streams it. */
export interface NodeReadinessReport {
  node: string;
  runId: string;
  ready: boolean;
  /** The node's lifecycle state after the run; undefined when the store has no record of the node. */
  state?: LifecycleState;
  /** Names of the failing checks. */
  failing: string[];
  /** 'readiness: check (reason); ...', '' when ready: the `failed` event's reason. */
  summary: string;
  evidence: Evidence[];
  startedAt: number;
  durationMs: number;
  /** Why the run could not check everything (no connection, no facts), if so. */
  error?: { code: string; message: string };
  /** Why the lifecycle was left as it was, when it was (node still provisioning, transition refused). */
  lifecycleNote?: string;
}

/**
 * Ready now, from a run just made: every check passed and the lifecycle says ready. Passing checks on a node that is
 * installed (states never applied), configuring, or failed in its states are no proof its roles were configured.
 */
export const readyNow = (r: Pick<NodeReadinessReport, 'ready' | 'state'>): boolean => r.ready && r.state === 'ready';

/** The last stored readiness run of a node, for `rackseed ready` without --check. */
export interface StoredReadiness {
  node: string;
  state?: LifecycleState;
  /**
   * Ready now: the lifecycle says ready (which only a passing readiness run moves it to) and the last run passed.
   * A run that passed before the node was reimaged, failed or reconfigured is history, not readiness.
   */
  ready: boolean;
  run?: { id: string; startedAt: number; finishedAt?: number; ready: boolean; failing: string[]; summary: string; evidence: Evidence[] };
}

export interface ReadinessServiceDeps {
  inventory: InventoryService;
  store: ObservedStore;
  settings: ReadinessSettings;
  log: Logger;
  /** Required unless transportFor is given: the SSH identity used by the default transport. */
  identity?: NodeIdentity;
  /** How to reach a node; the default is SSH with the pinned host key. Tests inject fakes. */
  transportFor?: TransportFactory;
  now?: () => number;
  /** This server's name, recorded with each run it starts (its next start closes the ones it never finished). */
  serverName?: string;
  /** One operation at a time per node, shared with state runs and convergence (the server passes one instance). */
  locks?: NodeLocks;
  /**
   * Called with the reports of every run once all its nodes are done (slurm.drain_unready: drain or resume them in
   * Slurm). Its failure is logged, never the run's.
   */
  afterRun?: (reports: readonly NodeReadinessReport[]) => Promise<void>;
}

/** Facts when collection failed: checks that need them report "not reported" rather than guessing. */
const NO_FACTS: NodeFacts = { osFamily: 'unknown', osId: 'unknown', osRelease: '', kernel: '', arch: '', cpus: 0, memoryMiB: 0, hostname: '', gpus: [], nics: [] };

/** States whose lifecycle readiness drives; earlier states (still provisioning) are only observed. */
const DRIVEN_STATES: ReadonlySet<LifecycleState> = new Set(['installed', 'configuring', 'ready', 'failed']);
const MAX_REASON = 2000;

/**
 * Checks target nodes against their roles and declared hardware: connect -> facts -> every role's checks ->
 * store the run (kind 'readiness', details = evidence) -> move the lifecycle: configuring -> ready when every check
 * passes, else failed with the failing checks. A node's failure to connect is its failed readiness, never the
 * others'.
 */
export class ReadinessService {
  private readonly now: () => number;
  private readonly transportFor: TransportFactory;

  private readonly locks: NodeLocks;

  constructor(private readonly deps: ReadinessServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.locks = deps.locks ?? new NodeLocks();
    if (deps.transportFor) this.transportFor = deps.transportFor;
    else if (deps.identity) {
      this.transportFor = sshTransportFactory({ identity: deps.identity, sshPort: deps.settings.sshPort, connectTimeoutMs: deps.settings.connectTimeoutMs });
    } else throw new Error('ReadinessService needs either transportFor or identity');
  }

  /**
   * `byConvergence`: the convergence that owns a `configuring` node calls this after its states applied. Anyone
   * else's run (an operator's `ready --check`) finds such a node mid-apply: it stores its evidence and leaves the
   * lifecycle to the convergence, or a pass would make ready a node whose states then fail (and the failure would be
   * dropped, the node no longer configuring).
   */
  async run(targets: readonly ResolvedNode[], onNode?: (r: NodeReadinessReport) => void, opts: { byConvergence?: boolean } = {}): Promise<NodeReadinessReport[]> {
    // runNode only throws if the store fails; that node then becomes a failed entry with the reason.
    // A convergence holds the node's lock for its whole attempt (apply, then this check); anyone else queues.
    const locks = this.locks;
    const entries = await runFleet(targets, (node) => (opts.byConvergence ? this.runNode(node, true) : locks.withNode(node.name, () => this.runNode(node, false))), {
      concurrency: this.deps.settings.concurrency,
      ...(opts.byConvergence ? {} : { deferWhile: (node: ResolvedNode) => locks.isBusy(node.name) }),
      onNodeDone: (entry) => {
        // Made (and logged) whether or not anyone streams: the log must say why a node has no run.
        const report = entry.status === 'completed' ? entry.outcome : this.crashed(entry.target, entry.reason, entry.error);
        onNode?.(report);
      },
    });
    const reports = entries.map((e) => (e.status === 'completed' ? e.outcome : this.crashed(e.target, e.reason, e.error, false)));
    if (this.deps.afterRun) await this.deps.afterRun(reports).catch((err: unknown) => this.deps.log.error({ err }, 'after the readiness run: the Slurm drains could not be updated'));
    return reports;
  }

  /** The last stored readiness run of each node; runs no checks. */
  async last(targets: readonly ResolvedNode[]): Promise<StoredReadiness[]> {
    return Promise.all(
      targets.map(async (node) => {
        const [status, runs] = await Promise.all([this.deps.store.getNode(node.name), this.deps.store.listRuns({ node: node.name, kind: 'readiness', limit: 1 })]);
        const run = runs[0] ? storedRun(runs[0]) : undefined;
        return { node: node.name, ...(status ? { state: status.state } : {}), ready: readyNow({ ready: run?.ready === true, state: status?.state }), ...(run ? { run } : {}) };
      }),
    );
  }

  private async runNode(node: ResolvedNode, byConvergence: boolean): Promise<NodeReadinessReport> {
    const log = nodeLogger(this.deps.log, { name: node.name });
    const { store } = this.deps;
    const startedAt = this.now();
    const runId = randomUUID();
    await store.createRun({ id: runId, node: node.name, kind: 'readiness', result: 'running', startedAt, summary: runOwner(this.deps.serverName), details: [] });

    const notes: string[] = [];
    const before = await store.getNode(node.name);
    // Whether this run decides a configuring node's outcome: the convergence's run, or one that itself took the node
    // back into configuring (its states were applied; only readiness failed).
    let decides = byConvergence;
    // Readiness decides ready or not only for a node whose states are applied: a passing check on an installed node
    // (never converged) or one whose states failed would report ready a node whose roles were never configured.
    if (before?.state === 'failed' && before.stage === 'readiness') {
      const r = await store.recordEvent({ node: node.name, event: { type: 'configure_started' } });
      if (!r.ok) notes.push(r.error);
      else decides = true;
    } else if (before?.state === 'installed') {
      notes.push(`node is installed and its states are not applied yet: lifecycle left as it is (it converges once it answers; rackseed converge ${node.name} does it now)`);
    } else if (before?.state === 'failed' && isInstallFailure(before)) {
      notes.push(`node failed to install (stage ${before.stage}): lifecycle left as it is until it is reimaged`);
    } else if (before?.state === 'failed') {
      notes.push(`node failed in ${before.stage ?? 'an earlier run'}: lifecycle left as it is (fix the cause, then rackseed converge ${node.name}: states, then readiness)`);
    }

    const { evidence, error } = await this.check(node);
    const v = verdict(evidence);
    const finishedAt = this.now();
    for (const e of v.failing) countReadinessFailure(e.check);
    observeRun('readiness', (finishedAt - startedAt) / 1000, v.ready ? 'success' : 'failed');
    const failing = v.failing.map((e) => e.check);
    await finishRunDurably(store, log, runId, {
      result: v.ready ? 'success' : 'failed',
      finishedAt,
      summary: { ready: v.ready, failing, summary: v.summary, checks: evidence.length, failed: failing.length, ...(error ? { error } : {}) },
      details: evidence,
    });

    const after = await store.getNode(node.name);
    if (!after) notes.push('the store has no record of this node: lifecycle not changed');
    else if (!DRIVEN_STATES.has(after.state)) notes.push(`node is ${after.state}: readiness does not move its lifecycle until it is installed`);
    else if (after.state === 'configuring' && !decides) {
      notes.push(`node is configuring (its states are being applied): lifecycle left to the convergence, which checks readiness once they are`);
    } else if (v.ready && after.state === 'configuring') {
      const r = await store.recordEvent({ node: node.name, event: { type: 'ready' } });
      if (!r.ok) notes.push(r.error);
    } else if (!v.ready && (after.state === 'configuring' || after.state === 'ready')) {
      const reason = v.summary.length > MAX_REASON ? `${v.summary.slice(0, MAX_REASON - 1)}…` : v.summary;
      const r = await store.recordEvent({ node: node.name, event: { type: 'failed', reason, stage: 'readiness' satisfies PostInstallStage } });
      if (!r.ok) notes.push(r.error);
    }
    const state = (await store.getNode(node.name))?.state;

    const report: NodeReadinessReport = {
      node: node.name,
      runId,
      ready: v.ready,
      ...(state ? { state } : {}),
      failing,
      summary: v.summary,
      evidence,
      startedAt,
      durationMs: finishedAt - startedAt,
      ...(error ? { error } : {}),
      ...(notes.length > 0 ? { lifecycleNote: notes.join('; ') } : {}),
    };
    log.info({ runId, ready: v.ready, failing, state, ms: report.durationMs }, 'readiness checked');
    return report;
  }

  /** Connects, collects facts and runs the checks; every failure along the way becomes evidence. */
  private async check(node: ResolvedNode): Promise<{ evidence: Evidence[]; error?: { code: string; message: string } }> {
    const timeoutMs = this.deps.settings.commandTimeoutMs;
    let transport: Transport;
    try {
      transport = await this.transportFor(node);
    } catch (err) {
      const error = describeFailure(err);
      return { evidence: [sshEvidence(`${error.code}: ${error.message}`)], error };
    }
    const evidence: Evidence[] = [sshEvidence()];
    let error: { code: string; message: string } | undefined;
    try {
      let facts = NO_FACTS;
      try {
        facts = await collectFacts(transport, timeoutMs);
      } catch (err) {
        error = describeFailure(err);
        evidence.push({ check: 'base.facts', role: 'base', expected: 'facts collected', seen: error.code, pass: false, reason: error.message });
      }
      const inv = this.deps.inventory.inventory;
      const { data, failure } = expectationDataOrFailure(inv, node, this.deps.settings.pillarDir);
      if (failure) {
        error ??= failure;
        evidence.push(pillarEvidence(failure));
      }
      const ctx = buildCheckContext(inv, node, facts, data, { slurmDrainUnready: this.deps.settings.slurmDrainUnready === true });
      evidence.push(...(await collectEvidence(ctx, transport, { timeoutMs })));
    } finally {
      await transport.close().catch(() => undefined);
    }
    return error ? { evidence, error } : { evidence };
  }

  /** A node whose run could not be carried out or stored (`logIt` once per node: the stream and the result both make one). */
  private crashed(node: ResolvedNode, reason: string, error: unknown, logIt = true): NodeReadinessReport {
    const code = describeFailure(error).code;
    if (logIt) nodeLogger(this.deps.log, { name: node.name }).error({ code, err: reason }, 'readiness could not be checked');
    return { node: node.name, runId: '', ready: false, failing: [], summary: `readiness: ${reason}`, evidence: [], startedAt: this.now(), durationMs: 0, error: { code, message: reason } };
  }
}

function storedRun(run: Run): NonNullable<StoredReadiness['run']> {
  const summary = run.summary as { ready?: unknown; failing?: unknown; summary?: unknown };
  const evidence = Array.isArray(run.details) ? (run.details as Evidence[]) : [];
  return {
    id: run.id,
    startedAt: run.startedAt,
    ...(run.finishedAt !== undefined ? { finishedAt: run.finishedAt } : {}),
    // A run still 'running' (or interrupted) is not evidence of readiness.
    ready: run.result === 'success' && summary.ready === true,
    failing: Array.isArray(summary.failing) ? summary.failing.filter((f): f is string => typeof f === 'string') : [],
    summary: typeof summary.summary === 'string' ? summary.summary : run.result === 'running' ? 'readiness run still running or interrupted' : '',
    evidence,
  };
}
