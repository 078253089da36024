import type { Inventory, ResolvedNode } from '../model/inventory.js';
import type { Transport } from '../state/types.js';
import type { TransportFactory } from './node-transport.js';
import {
  cancelScript,
  chunks,
  parseCancelAnswers,
  parseRebootAnswers,
  rebootRequestScript,
  type SlurmCancelAnswer,
  type SlurmNodeAnswer,
} from './slurm-reboot-script.js';

/** The role whose nodes run slurmctld; rackseed runs scontrol there (root on it is a Slurm administrator). */
export const SLURM_CONTROLLER_ROLE = 'slurm-controller';
export const SLURM_COMPUTE_ROLE = 'slurm-compute';

/** Asks Slurm to reboot compute nodes once their jobs are done, and withdraws such requests. */
export interface SlurmRebooter {
  requestReboots(nodes: readonly string[], signal: AbortSignal): Promise<SlurmNodeAnswer[]>;
  cancelReboots(nodes: readonly string[], signal: AbortSignal): Promise<SlurmCancelAnswer[]>;
}

/** The inventory's Slurm controllers, in inventory order. */
export function slurmControllers(inv: Inventory): ResolvedNode[] {
  return [...inv.nodes.values()].filter((n) => n.roles.includes(SLURM_CONTROLLER_ROLE));
}

export interface SlurmRebooterOptions {
  inventory: () => Inventory;
  transportFor: TransportFactory;
  /** For one command on the controller, plus PER_NODE_MS for each of its nodes. */
  timeoutMs: number;
}

/** Three scontrol calls per node on a busy slurmctld. */
const PER_NODE_MS = 500;

/**
 * Runs the scripts of slurm-reboot-script.ts on the first controller that can be reached (an HA pair's second one
 * when the first is down: scontrol on either reaches the slurmctld in charge). The answers of every piece that
 * finished are kept; the nodes of a piece that failed or timed out are asked again on the next controller (asking
 * again is harmless: the request is the same). A node gets a failed answer, never a fallback reboot, when no
 * controller could be asked: rebooting it by other means would kill its jobs.
 */
export function slurmRebooter(o: SlurmRebooterOptions): SlurmRebooter {
  async function onController<A extends { node: string }>(
    nodes: readonly string[],
    signal: AbortSignal,
    script: (n: readonly string[]) => string,
    parse: (n: readonly string[], out: string, missing: string) => A[],
    failed: (node: string, error: string) => A,
  ): Promise<A[]> {
    const controllers = slurmControllers(o.inventory());
    if (controllers.length === 0) return nodes.map((n) => failed(n, `no node of the inventory has the ${SLURM_CONTROLLER_ROLE} role: nothing to ask Slurm through`));
    const answers = new Map<string, A>();
    const problems: string[] = [];
    for (const controller of controllers) {
      const remaining = nodes.filter((n) => !answers.has(n));
      if (remaining.length === 0 || signal.aborted) break;
      let transport: Transport | undefined;
      try {
        transport = await o.transportFor(controller);
        for (const piece of chunks(remaining)) {
          if (signal.aborted) break;
          const r = await transport.exec(script(piece), { timeoutMs: o.timeoutMs + piece.length * PER_NODE_MS });
          for (const a of parse(piece, r.stdout, `no answer from ${controller.name} (exit ${r.code}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : ''})`)) answers.set(a.node, a);
        }
      } catch (err) {
        // The transports name the node first already.
        const message = (err as Error).message;
        problems.push(message.startsWith(`${controller.name}: `) ? message : `${controller.name}: ${message}`);
      } finally {
        await transport?.close().catch(() => undefined);
      }
    }
    const why = problems.length > 0 ? problems.join('; ') : 'stopped: no answer in time';
    // A piece cut short may have been carried out in part: say so rather than "not asked".
    return nodes.map((n) => answers.get(n) ?? failed(n, `no complete answer from Slurm (${why}); it may have taken the request all the same: see scontrol show node ${n}`));
  }
  return {
    requestReboots: (nodes, signal) => onController<SlurmNodeAnswer>(nodes, signal, rebootRequestScript, parseRebootAnswers, (node, error) => ({ node, ok: false, error })),
    cancelReboots: (nodes, signal) => onController<SlurmCancelAnswer>(nodes, signal, cancelScript, parseCancelAnswers, (node, error) => ({ node, outcome: 'failed', error })),
  };
}
