import { nodeLogger, type Logger } from '../log.js';
import { slurmHealthAction } from '../readiness/slurm-drain.js';
import { askSlurm, SLURM_COMPUTE_ROLE, slurmControllers, type SlurmControllerOptions } from './slurm-controller.js';
import { drainScript, parseDrainAnswers, resumeScript, type SlurmDrainAnswer } from './slurm-drain-script.js';
import type { NodeReadinessReport } from './readiness-service.js';

export interface SlurmHealthOptions extends SlurmControllerOptions {
  log: Logger;
}

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
    const actions = reports
      .filter((r) => inv.nodes.get(r.node)?.roles.includes(SLURM_COMPUTE_ROLE) === true)
      .map((r) => slurmHealthAction(r.node, r.evidence, r.error))
      .filter((a) => a !== undefined);
    const reasons = new Map(actions.flatMap((a) => (a.kind === 'drain' ? [[a.node, a.reason] as const] : [])));
    const resumes = actions.filter((a) => a.kind === 'resume').map((a) => a.node);
    const signal = AbortSignal.timeout(o.timeoutMs + actions.length * 1_000);
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
