import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import { nodeLogger } from '../log.js';
import type { ResolvedNode } from '../model/inventory.js';
import type { ObservedStore, RunResult } from '../store/types.js';
import { buildRenderContext } from '../state/context.js';
import { collectFacts } from '../state/collect-facts.js';
import { compileForNode } from '../state/compile/index.js';
import { builtinModules, knownFunctions } from '../state/modules/index.js';
import { composePillar } from '../state/pillar.js';
import { clusterFactsFromStore, clusterFactsToStore } from '../state/cluster-facts.js';
import { deepMerge } from '../inventory/index.js';
import { rolePillar } from './role-secrets.js';
import { runPlan } from '../state/run/runner.js';
import { runFleet } from '../state/run/fleet.js';
import { countResults, runVerdict, type RunCounts } from '../state/run/summary.js';
import { FsSlsSource } from '../state/source-fs.js';
import { renderTemplateText } from '../state/render/render.js';
import type { ModuleRegistry, NodeFacts, StateResult, Transport } from '../state/types.js';
import type { InventoryService } from './inventory-service.js';
import type { NodeIdentity } from './node-identity.js';
import { sshTransportFactory, type TransportFactory } from './node-transport.js';
import { roleView } from './convergence-roles.js';
import { loadPillarDocuments } from './pillar-files.js';
import { observeRun } from '../metrics/runtime-metrics.js';
import { describeFailure, RackseedError } from '../model/errors.js';
import { NodeLocks } from './node-locks.js';
import { finishRunDurably, runOwner } from './run-record.js';

export interface StateSettings {
  /** SLS roots, searched in order: the operator's directories first, the built-in states/ last. */
  roots: string[];
  /** Per-group and per-node pillar files (secrets): <dir>/groups/<group>.yaml, <dir>/nodes/<node>.yaml. */
  pillarDir: string;
  /** Nodes run at once. */
  concurrency: number;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  sshPort: number;
  /** slurm.drain_unready, for the audit's readiness checks (see CheckContext). */
  slurmDrainUnready?: boolean;
}

/** One node's outcome of a state run, as stored and as the API streams it. */
export interface NodeRunReport {
  node: string;
  runId: string;
  mode: 'apply' | 'test';
  result: RunResult;
  counts: RunCounts;
  durationMs: number;
  /** This run found the node's CPUs, memory or GPUs changed (or seen for the first time). */
  hardwareChanged?: boolean;
  /**
   * The run itself changed them (it installed the GPU driver, say): the node's own files were rendered from the facts
   * of before, and an apply again renders them with what the node has now.
   */
  hardwareChangedDuringRun?: boolean;
  /** Why the node's run failed as a whole (no connection, compile error), if it did. */
  error?: { code: string; message: string };
  states: StateResult[];
}

/** What running one node's states produced, before it is stored. */
export interface StatesOnNode {
  states: StateResult[];
  /** The facts collected at the start (absent when collecting them failed). */
  facts?: NodeFacts;
  /** Why the run failed as a whole or stopped early (connection, compile error, failhard). */
  error?: { code: string; message: string };
  /** The node's CPUs, memory or GPUs differ from what its last run stored (other nodes' slurm.conf depends on them). */
  hardwareChanged?: boolean;
  /** They changed while the states ran (facts collected again after an apply that changed something). */
  hardwareChangedDuringRun?: boolean;
}

export interface StateServiceDeps {
  inventory: InventoryService;
  store: ObservedStore;
  identity: NodeIdentity;
  settings: StateSettings;
  log: Logger;
  /** How to reach a node; the default is SSH with the host key pinned at provisioning. Tests inject others. */
  transportFor?: (node: ResolvedNode) => Promise<Transport>;
  registry?: ModuleRegistry;
  now?: () => number;
  /** This server's name, recorded with each run it starts (its next start closes the ones it never finished). */
  serverName?: string;
  /** One operation at a time per node, shared with readiness and convergence (the server passes one instance). */
  locks?: NodeLocks;
}

/**
 * Applies (or dry-runs) each target node's states: connect -> collect facts -> compile -> run -> store the run.
 * Nodes run in parallel up to the concurrency bound; one node's failure (no connection, bad SLS, a dropped link)
 * becomes that node's failed run and never stops the others.
 */
export class StateService {
  private readonly registry: ModuleRegistry;
  private readonly now: () => number;
  private readonly locks: NodeLocks;

  private readonly transportFor: TransportFactory;
  private readonly hardwareListeners: Array<(node: string) => void> = [];

  constructor(private readonly deps: StateServiceDeps) {
    this.registry = deps.registry ?? builtinModules();
    this.now = deps.now ?? Date.now;
    this.locks = deps.locks ?? new NodeLocks();
    this.transportFor =
      deps.transportFor ?? sshTransportFactory({ identity: deps.identity, sshPort: deps.settings.sshPort, connectTimeoutMs: deps.settings.connectTimeoutMs });
  }

  /**
   * Called after an apply stored a node's first or changed hardware facts, whoever asked for the apply (convergence,
   * `rackseed state apply`): the peers that render it (slurm.conf) must render again. Only an apply stores facts, so
   * a dry run or an audit cannot use the change up before an apply acts on it.
   */
  onHardwareChange(listener: (node: string) => void): void {
    this.hardwareListeners.push(listener);
  }

  /**
   * `lockHeld`: the caller holds the nodes' locks already (a convergence attempt, which applies and checks readiness
   * as one operation); everyone else queues behind whatever runs on the node.
   */
  async run(targets: readonly ResolvedNode[], mode: 'apply' | 'test', onNode?: (r: NodeRunReport) => void, opts: { lockHeld?: boolean } = {}): Promise<NodeRunReport[]> {
    // runNode throws only when the store fails: that node's entry is a failed report with the reason, streamed too.
    const entries = await runFleet(targets, (node) => (opts.lockHeld ? this.runNode(node, mode) : this.locks.withNode(node.name, () => this.runNode(node, mode))), {
      concurrency: this.deps.settings.concurrency,
      // A node another operation holds waits at the back of the fleet rather than in one of its slots.
      ...(opts.lockHeld ? {} : { deferWhile: (node: ResolvedNode) => this.locks.isBusy(node.name) }),
      onNodeDone: (entry) => {
        // Made (and logged) whether or not anyone streams: the log must say why a node has no run.
        const report = entry.status === 'completed' ? entry.outcome : this.crashed(entry.target, mode, entry.reason, entry.error);
        onNode?.(report);
      },
    });
    return entries.map((e) => (e.status === 'completed' ? e.outcome : this.crashed(e.target, mode, e.reason, e.error, false)));
  }

  private async runNode(node: ResolvedNode, mode: 'apply' | 'test'): Promise<NodeRunReport> {
    const log = nodeLogger(this.deps.log, { name: node.name });
    const startedAt = this.now();
    const runId = randomUUID();
    await this.deps.store.createRun({ id: runId, node: node.name, kind: mode, result: 'running', startedAt, summary: runOwner(this.deps.serverName), details: [] });
    let transport: Transport | undefined;
    let outcome: StatesOnNode;
    try {
      if (mode === 'apply' && (await this.deps.store.getNode(node.name))?.reimageRequested) {
        // Its next boot reinstalls it, perhaps into another group (reimage --group): the old OS gets nothing more.
        throw new RackseedError('REIMAGE_PENDING', `node ${node.name} is to be reimaged on its next boot: its states are not applied to the OS it runs now (rackseed reimage ${node.name} --cancel keeps that OS)`);
      }
      transport = await this.transportFor(node);
      outcome = await this.runOn(node, transport, mode);
    } catch (err) {
      outcome = { states: [], error: describeFailure(err) };
    } finally {
      await transport?.close().catch(() => undefined);
    }
    if (outcome.error) log.warn({ code: outcome.error.code, reason: outcome.error.message }, 'state run failed');
    const counts = countResults(outcome.states);
    const report: NodeRunReport = {
      node: node.name,
      runId,
      mode,
      result: outcome.error && outcome.states.length === 0 ? 'failed' : runVerdict(outcome.states, mode),
      counts,
      durationMs: this.now() - startedAt,
      ...(outcome.error ? { error: outcome.error } : {}),
      ...(outcome.hardwareChanged ? { hardwareChanged: true } : {}),
      ...(outcome.hardwareChangedDuringRun ? { hardwareChangedDuringRun: true } : {}),
      states: outcome.states,
    };
    await finishRunDurably(this.deps.store, log, runId, {
      result: report.result,
      finishedAt: this.now(),
      // What the node was configured as, so that a role change made while the server was down is seen at its start.
      summary: { mode, counts: report.counts, ...(mode === 'apply' ? { configuredAs: roleView(node) } : {}), ...(report.error ? { error: report.error } : {}) },
      details: report.states,
    });
    observeRun(mode, report.durationMs / 1000, report.result);
    log.info({ runId, mode, result: report.result, counts: report.counts, ms: report.durationMs }, 'state run finished');
    if (report.hardwareChanged) for (const listener of this.hardwareListeners) listener(node.name);
    return report;
  }

  /**
   * One node's states over a connection the caller owns (it stays open): facts, pillar, compile, run. Stores no run:
   * `run` records one per node, the audit records its own. Never throws for what happens on the node; the facts are
   * returned so a caller can reuse them (the audit's readiness checks).
   */
  async runOn(node: ResolvedNode, transport: Transport, mode: 'apply' | 'test'): Promise<StatesOnNode> {
    let facts: NodeFacts | undefined;
    try {
      facts = await collectFacts(transport, this.deps.settings.commandTimeoutMs);
      const inv = this.deps.inventory.inventory;
      const stored = clusterFactsToStore(facts);
      const previous = clusterFactsFromStore((await this.deps.store.getNode(node.name))?.facts);
      // Stored by an apply only: the audit and dry runs change nothing, the stored hardware included.
      const hardwareChanged = mode === 'apply' && JSON.stringify(previous) !== JSON.stringify(clusterFactsFromStore(stored));
      if (mode === 'apply') await this.deps.store.touchNode(node.name, { facts: stored });
      // Role secrets (munge key, k3s token) join the pillar only of nodes that have the role.
      const pillar = deepMerge(composePillar(node, inv.groups.get(node.group), loadPillarDocuments(this.deps.settings.pillarDir, node)), rolePillar(node, this.deps.identity.dataDir));
      const statuses = await this.deps.store.listNodes();
      const clusterFacts = new Map(
        statuses.flatMap((s) => {
          const f = clusterFactsFromStore(s.facts);
          return f ? [[s.id, f] as const] : [];
        }),
      );
      const clusterStates = new Map(statuses.map((s) => [s.id, { state: s.state, ...(s.stage !== undefined ? { stage: s.stage } : {}) }] as const));
      const context = buildRenderContext(inv, node, pillar, facts, clusterFacts, clusterStates);
      const source = new FsSlsSource(this.deps.settings.roots);
      // Arguments are checked at compile time, with the file and line, so a typo fails the run before anything changes.
      const plan = compileForNode({ source, context, knownFunctions: knownFunctions(), validateArgs: (decl) => this.registry.get(`${decl.module}.${decl.fun}`)?.validate?.(decl.args) ?? [] });
      const { results, aborted } = await runPlan(plan, {
        registry: this.registry,
        context: {
          transport,
          facts,
          timeoutMs: this.deps.settings.commandTimeoutMs,
          renderTemplate: (text, file) => renderTemplateText(text, file, context, source),
          readSource: async (ref) => source.readFile(ref),
        },
        options: { test: mode === 'test', timeoutMs: this.deps.settings.commandTimeoutMs },
        now: this.now,
      });
      const error = aborted ? { code: aborted.cause === 'transport' ? 'STATE_TRANSPORT' : 'STATE_FAILHARD', message: aborted.reason } : undefined;
      // A state that installs a driver (nvidia) makes GPUs appear that the facts of before did not show: slurm.conf
      // and gres.conf were rendered without them, here and on every peer. The facts are read again after an apply
      // that changed anything, and stored when the hardware differs.
      let changedDuringRun = false;
      if (mode === 'apply' && !aborted && results.some((r) => r.result === true && Object.keys(r.changes ?? {}).length > 0)) {
        const afterFacts = await collectFacts(transport, this.deps.settings.commandTimeoutMs).then(clusterFactsToStore, () => undefined);
        // Not read (the link dropped after the states ran): the states' results stand, the next run reads the facts.
        if (afterFacts && JSON.stringify(clusterFactsFromStore(afterFacts)) !== JSON.stringify(clusterFactsFromStore(stored))) {
          await this.deps.store.touchNode(node.name, { facts: afterFacts });
          changedDuringRun = true;
        }
      }
      return {
        states: results,
        facts,
        hardwareChanged: hardwareChanged || changedDuringRun,
        ...(changedDuringRun ? { hardwareChangedDuringRun: true } : {}),
        ...(error ? { error } : {}),
      };
    } catch (err) {
      return { states: [], ...(facts ? { facts } : {}), error: describeFailure(err) };
    }
  }

  /** A node whose run could not be carried out or stored (`logIt` once per node: the stream and the result both make one). */
  private crashed(node: ResolvedNode, mode: 'apply' | 'test', reason: string, error: unknown, logIt = true): NodeRunReport {
    const code = describeFailure(error).code;
    if (logIt) nodeLogger(this.deps.log, { name: node.name }).error({ mode, code, err: reason }, 'state run could not be carried out');
    return { node: node.name, runId: '', mode, result: 'failed', counts: countResults([]), durationMs: 0, error: { code, message: reason }, states: [] };
  }


}

