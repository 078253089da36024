import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import { nodeLogger } from '../log.js';
import { observeRun } from '../metrics/runtime-metrics.js';
import type { ResolvedNode } from '../model/inventory.js';
import { buildCheckContext } from '../readiness/context.js';
import { expectationDataOrFailure } from './pillar-files.js';
import { collectEvidence } from '../readiness/engine.js';
import { pillarEvidence, sshEvidence } from '../readiness/roles/base.js';
import type { Evidence } from '../readiness/types.js';
import { collectFacts } from '../state/collect-facts.js';
import { builtinModules } from '../state/modules/index.js';
import { runFleet } from '../state/run/fleet.js';
import { NodeLocks } from './node-locks.js';
import type { ModuleRegistry, NodeFacts, StateResult, Transport } from '../state/types.js';
import type { ObservedStore } from '../store/types.js';
import { auditRunRecord, auditRunResult, buildAuditReport, type AuditNodeReport } from './audit-report.js';
import type { InventoryService } from './inventory-service.js';
import type { NodeIdentity } from './node-identity.js';
import { sshTransportFactory, type TransportFactory } from './node-transport.js';
import { StateService, type StateSettings } from './state-service.js';
import { describeFailure } from '../model/errors.js';
import { finishRunDurably, runOwner } from './run-record.js';

export type { AuditNodeReport } from './audit-report.js';

export interface AuditServiceDeps {
  inventory: InventoryService;
  store: ObservedStore;
  identity: NodeIdentity;
  /** The state settings (SLS roots, pillar, timeouts); `concurrency` bounds how many nodes are audited at once. */
  settings: StateSettings;
  log: Logger;
  /** How to reach a node; the default is SSH with the pinned host key. Tests inject others. */
  transportFor?: TransportFactory;
  registry?: ModuleRegistry;
  now?: () => number;
  /** This server's name, recorded with each run it starts (its next start closes the ones it never finished). */
  serverName?: string;
  /**
   * Shared with the services that change nodes: a node is audited between their operations, not during one (an
   * apply half done showed its remaining changes as drift, and a readiness check its restarting services as failed).
   */
  locks?: NodeLocks;
}

type Failure = { code: string; message: string };

/** Facts when collection failed: checks that need them report "not reported" rather than guessing. */
const NO_FACTS: NodeFacts = { osFamily: 'unknown', osId: 'unknown', osRelease: '', kernel: '', arch: '', cpus: 0, memoryMiB: 0, hostname: '', gpus: [], nics: [] };

/**
 * Fleet audit: for each node, over ONE connection, a dry run of its states (what apply would change, with the
 * predicted diffs) and its readiness checks, evidence only. It changes nothing: no state is applied and, unlike
 * ReadinessService, no lifecycle event is recorded, so auditing a ready node leaves it ready even when a check
 * fails. Each node gets one stored run of kind 'audit'. A node that cannot be reached or evaluated is reported as
 * such (never as clean) and never stops the others.
 */
export class AuditService {
  private readonly registry: ModuleRegistry;
  private readonly now: () => number;
  private readonly transportFor: TransportFactory;
  private readonly states: StateService;
  private readonly locks: NodeLocks;

  constructor(private readonly deps: AuditServiceDeps) {
    this.registry = deps.registry ?? builtinModules();
    this.now = deps.now ?? Date.now;
    this.locks = deps.locks ?? new NodeLocks();
    this.transportFor =
      deps.transportFor ?? sshTransportFactory({ identity: deps.identity, sshPort: deps.settings.sshPort, connectTimeoutMs: deps.settings.connectTimeoutMs });
    this.states = new StateService({
      inventory: deps.inventory,
      store: deps.store,
      identity: deps.identity,
      settings: deps.settings,
      log: deps.log,
      transportFor: this.transportFor,
      registry: this.registry,
      now: this.now,
    });
  }

  async audit(targets: readonly ResolvedNode[], onNode?: (r: AuditNodeReport) => void): Promise<AuditNodeReport[]> {
    // auditNode only throws if the store fails; that node is then reported as not audited, with the reason.
    const entries = await runFleet(targets, (node) => this.locks.withNode(node.name, () => this.auditNode(node)), {
      concurrency: this.deps.settings.concurrency,
      // A node being applied or converged is audited after the others: waiting for it held one of the audit's slots.
      deferWhile: (node) => this.locks.isBusy(node.name),
      onNodeDone: (entry) => {
        // Made (and logged) whether or not anyone streams: the log must say why a node has no run.
        const report = entry.status === 'completed' ? entry.outcome : this.crashed(entry.target, entry.reason, entry.error);
        onNode?.(report);
      },
    });
    return entries.map((e) => (e.status === 'completed' ? e.outcome : this.crashed(e.target, e.reason, e.error, false)));
  }

  private async auditNode(node: ResolvedNode): Promise<AuditNodeReport> {
    const log = nodeLogger(this.deps.log, { name: node.name });
    const startedAt = this.now();
    const runId = randomUUID();
    await this.deps.store.createRun({ id: runId, node: node.name, kind: 'audit', result: 'running', startedAt, summary: runOwner(this.deps.serverName), details: [] });

    let reachable = true;
    let states: StateResult[] = [];
    let evidence: Evidence[];
    let error: Failure | undefined;
    let transport: Transport | undefined;
    try {
      transport = await this.transportFor(node);
    } catch (err) {
      reachable = false;
      error = describeFailure(err);
    }
    if (!transport) {
      evidence = [sshEvidence(`${error?.code}: ${error?.message}`)];
    } else {
      try {
        const dry = await this.dryRun(node, transport);
        states = dry.states;
        error = dry.error;
        const checked = await this.check(node, transport, dry.facts);
        evidence = checked.evidence;
        error ??= checked.error;
      } finally {
        await transport.close().catch(() => undefined);
      }
    }

    const finishedAt = this.now();
    const report = buildAuditReport({ node: node.name, runId, reachable, states, evidence, startedAt, finishedAt, error });
    const result = auditRunResult(report);
    await finishRunDurably(this.deps.store, log, runId, { result, finishedAt, ...auditRunRecord(report, evidence) });
    observeRun('audit', (finishedAt - startedAt) / 1000, result);
    log.info(
      { runId, drift: report.drift, wouldChange: report.wouldChange.map((s) => s.key), failedChecks: report.failedChecks.map((e) => e.check), error, ms: report.durationMs },
      'node audited',
    );
    return report;
  }

  /** The states in test mode over the audit's connection; the audit stores the outcome in its own run. */
  private async dryRun(node: ResolvedNode, transport: Transport): Promise<{ states: StateResult[]; facts?: NodeFacts; error?: Failure }> {
    return this.states.runOn(node, transport, 'test');
  }

  /** The readiness checks as evidence only (no run, no lifecycle event); a failure to collect facts is evidence too. */
  private async check(node: ResolvedNode, transport: Transport, known: NodeFacts | undefined): Promise<{ evidence: Evidence[]; error?: Failure }> {
    const timeoutMs = this.deps.settings.commandTimeoutMs;
    const evidence: Evidence[] = [sshEvidence()];
    let facts = known ?? NO_FACTS;
    let error: Failure | undefined;
    try {
      facts = known ?? (await collectFacts(transport, timeoutMs));
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
    return error ? { evidence, error } : { evidence };
  }

  /** A node whose audit could not be carried out or stored (`logIt` once per node: the stream and the result both make one). */
  private crashed(node: ResolvedNode, reason: string, error: unknown, logIt = true): AuditNodeReport {
    const at = this.now();
    const code = describeFailure(error).code;
    if (logIt) nodeLogger(this.deps.log, { name: node.name }).error({ code, err: reason }, 'audit could not be carried out');
    return buildAuditReport({ node: node.name, runId: '', reachable: true, states: [], evidence: [], startedAt: at, finishedAt: at, error: { code, message: reason } });
  }
}
