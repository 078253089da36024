import { nodeLogger, type Logger } from '../log.js';
import { slurmHealthAction, slurmShowsDrain, type SlurmHealthAction } from '../readiness/slurm-drain.js';
import type { ObservedStore } from '../store/types.js';
import { askSlurm, SLURM_COMPUTE_ROLE, slurmBudgetMs, slurmControllers, type SlurmControllerOptions } from './slurm-controller.js';
import { drainScript, parseDrainAnswers, resumeScript, type SlurmDrainAnswer } from './slurm-drain-script.js';
import type { NodeReadinessReport } from './readiness-service.js';

export interface SlurmHealthOptions extends SlurmControllerOptions {
  store: Pick<ObservedStore, 'listRuns'>;
  log: Logger;
  /**
   * One run drains at most this percentage of the inventory's Slurm compute nodes (at least one; default 25). More
   * failing at once is a cluster-wide cause (a node added to the inventory and not yet in everyone's /etc/hosts, a
   * shared service down), not the nodes' health, and draining the partition for it would stop the cluster: nothing
   * is drained then, loudly.
   */
  drainMaxPercent?: number;
}

/** drainMaxPercent when not given: the default of rackseed.yaml's slurm.drain_max_percent. */
const SLURM_DRAIN_MAX_PERCENT = 25;

/**
 * slurm.drain_unready: after each readiness run (a convergence's or an operator's `ready --check`; never the audit,
 * which changes nothing), Slurm compute nodes whose checks failed are drained with the failing checks as the reason,
 * and nodes rackseed drained whose checks all pass again are resumed (server/readiness/slurm-drain.ts). Failures to
 * reach Slurm are logged per node and never fail the readiness run: the evidence and the lifecycle stand.
 */
export function slurmHealthSync(o: SlurmHealthOptions): (reports: readonly NodeReadinessReport[]) => Promise<void> {
  return async (reports) => {
    const inv = o.inventory();
    if (slurmControllers(inv).length === 0) return;
    const computes = [...inv.nodes.values()].filter((n) => n.roles.includes(SLURM_COMPUTE_ROLE)).length;
    const decided = reports
      .filter((r) => inv.nodes.get(r.node)?.roles.includes(SLURM_COMPUTE_ROLE) === true)
      .map((r) => ({ runId: r.runId, action: slurmHealthAction(r.node, r.evidence, r.error) }))
      .filter((d): d is { runId: string; action: SlurmHealthAction } => d.action !== undefined);
    // A fleet run's verdict on a node may be minutes old when the run ends: a newer run (a converge after the fix)
    // has the last word, else this one would drain a node the newer one found healthy, for good.
    const current = await Promise.all(decided.map(async (d) => ((await o.store.listRuns({ node: d.action.node, kind: 'readiness', limit: 1 }))[0]?.id === d.runId ? d.action : undefined)));
    let actions = current.filter((a) => a !== undefined);
    // Only new drains count: a node Slurm shows drained already (by rackseed, awaiting repair, or by a person) gets
    // at most a new reason, and a few broken nodes must not use up the share for good.
    const alreadyDrained = new Set(reports.filter((r) => r.evidence.some(slurmShowsDrain)).map((r) => r.node));
    const drains = actions.filter((a) => a.kind === 'drain' && !alreadyDrained.has(a.node));
    const allowed = Math.max(1, Math.floor((computes * (o.drainMaxPercent ?? SLURM_DRAIN_MAX_PERCENT)) / 100));
    if (drains.length > allowed) {
      o.log.error(
        { wouldDrain: drains.map((a) => `${a.node}: ${a.kind === 'drain' ? a.reason : ''}`), computes, allowed },
        `readiness failed on ${drains.length} of ${computes} Slurm compute nodes in one run (slurm.drain_max_percent allows ${allowed}): that looks cluster-wide, not the nodes' health; none drained`,
      );
      actions = actions.filter((a) => a.kind !== 'drain' || alreadyDrained.has(a.node));
    }
    const reasons = new Map(actions.flatMap((a) => (a.kind === 'drain' ? [[a.node, a.reason] as const] : [])));
    const resumes = actions.filter((a) => a.kind === 'resume').map((a) => a.node);
    const signal = AbortSignal.timeout(slurmBudgetMs(inv, actions.length, o.timeoutMs));
    const report = (answers: SlurmDrainAnswer[]) => {
      for (const a of answers) {
        const log = nodeLogger(o.log, { name: a.node });
        if (a.outcome === 'drained') log.warn({ reason: reasons.get(a.node) }, 'drained in Slurm: its readiness checks failed');
        else if (a.outcome === 'resumed') log.info('resumed in Slurm: its readiness checks pass again');
        else if (a.outcome === 'left') log.info({ detail: a.detail }, 'Slurm drain left as it is');
        else log.error({ reason: a.error }, 'could not change the node in Slurm after its readiness run');
      }
    };
    if (reasons.size > 0) {
      const nodes = [...reasons.keys()];
      report(await askSlurm(o, nodes, signal, (piece) => drainScript(piece.map((node) => ({ node, reason: reasons.get(node)! }))), parseDrainAnswers, (node, error) => ({ node, outcome: 'failed', error })));
    }
    if (resumes.length > 0) {
      report(await askSlurm(o, resumes, signal, resumeScript, parseDrainAnswers, (node, error) => ({ node, outcome: 'failed', error })));
    }
  };
}
