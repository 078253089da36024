import type { Evidence } from './types.js';

/** Every reason rackseed's readiness drain sets starts so: the only drains it ever lifts. */
export const SLURM_DRAIN_PREFIX = 'rackseed readiness: ';

/**
 * What a readiness run means for Slurm (slurm.drain_unready): a Slurm compute node whose checks fail (a GPU gone, an
 * InfiniBand port down, /etc/hosts wrong) is drained, so the scheduler stops sending it jobs, with the failing checks
 * as the reason; once every check passes again, the drain rackseed set (and only that one) is lifted. Pure.
 */

/** Slurm keeps reasons short in sinfo; the run's evidence has the whole story. */
export const SLURM_DRAIN_REASON_MAX = 200;

export const isRackseedDrain = (reason: string | undefined): boolean => reason?.startsWith(SLURM_DRAIN_PREFIX) === true;

export type SlurmHealthAction = { node: string; kind: 'drain'; reason: string } | { node: string; kind: 'resume' };

/** slurm.node_state saw the node drained (by anyone). */
export const slurmShowsDrain = (e: Evidence): boolean => e.check === 'slurm.node_state' && /DRAIN/i.test(e.seen);

/** slurm.node_state passed on a node that Slurm shows drained: only a drain of rackseed's own passes (roles/slurm.ts). */
const drainedByRackseed = (e: Evidence): boolean => e.pass && slurmShowsDrain(e);

/**
 * The action for one Slurm compute node's readiness run, or none. A run that could not check everything (no
 * connection, a check that did not run) concludes nothing: an unreachable node is Slurm's own business (slurmd not
 * responding), and a server that lost its network must not drain the fleet. Slurm's own checks (slurm.*) are not
 * reasons to drain: they report what Slurm already knows.
 */
export function slurmHealthAction(node: string, evidence: readonly Evidence[], error: unknown): SlurmHealthAction | undefined {
  if (error !== undefined || evidence.length === 0 || evidence.some((e) => e.notRun)) return undefined;
  const failing = evidence.filter((e) => !e.pass && !e.check.startsWith('slurm.'));
  if (failing.length > 0) {
    const words = failing.map((e) => (e.reason ? `${e.check} (${e.reason})` : e.check)).join('; ');
    // One line of printable text: it goes into slurm.conf-like tools and sinfo columns.
    const clean = `${SLURM_DRAIN_PREFIX}${words}`.replace(/[\u0000-\u001f\u007f]+/g, ' ');
    const reason = clean.length > SLURM_DRAIN_REASON_MAX ? `${clean.slice(0, SLURM_DRAIN_REASON_MAX - 1)}…` : clean;
    return { node, kind: 'drain', reason };
  }
  if (evidence.every((e) => e.pass) && evidence.some(drainedByRackseed)) return { node, kind: 'resume' };
  return undefined;
}
