import type { Inventory, ResolvedNode } from '../model/inventory.js';
import type { Transport } from '../state/types.js';
import { withoutTarget, type TransportFactory } from './node-transport.js';
import { chunks, SLURM_NODES_PER_COMMAND } from './slurm-reboot-script.js';

/**
 * Running scontrol scripts on the inventory's Slurm controller, for reimage --when-idle (slurm-reboot.ts) and for
 * draining nodes that fail readiness (slurm-health.ts). Root on a controller node is a Slurm administrator.
 */

/** The role whose nodes run slurmctld. */
export const SLURM_CONTROLLER_ROLE = 'slurm-controller';
export const SLURM_COMPUTE_ROLE = 'slurm-compute';

/** The inventory's Slurm controllers, in inventory order. */
export function slurmControllers(inv: Inventory): ResolvedNode[] {
  return [...inv.nodes.values()].filter((n) => n.roles.includes(SLURM_CONTROLLER_ROLE));
}

export interface SlurmControllerOptions {
  inventory: () => Inventory;
  transportFor: TransportFactory;
  /** For one command on the controller, plus PER_NODE_MS for each of its nodes. */
  timeoutMs: number;
}

/** Three scontrol calls per node on a busy slurmctld. */
export const SLURM_MS_PER_NODE = 600;
/** An SSH connection to a controller, on top of a piece's own time. */
const CONNECT_MS = 15_000;

/**
 * The whole time a request for `nodes` may take: every controller in turn may use its full share (connect, then
 * every piece), so that a hung first controller leaves the second one its chance.
 */
export function slurmBudgetMs(inv: Inventory, nodes: number, timeoutMs: number): number {
  return Math.max(1, slurmControllers(inv).length) * (CONNECT_MS + timeoutMs * Math.ceil(Math.max(nodes, 1) / SLURM_NODES_PER_COMMAND) + nodes * SLURM_MS_PER_NODE);
}

/**
 * Runs `script` for `nodes` on the first controller that can be reached (an HA pair's second one when the first is
 * down: scontrol on either reaches the slurmctld in charge), in pieces (slurm-reboot-script.ts chunks). The answers
 * of every piece that finished are kept; the nodes of a piece that failed or timed out are asked again on the next
 * controller (the scripts are safe to run twice). A node no controller answered for gets `failed`: the caller
 * decides what that means, never a fallback that bypasses Slurm.
 */
export async function askSlurm<A extends { node: string }>(
  o: SlurmControllerOptions,
  nodes: readonly string[],
  signal: AbortSignal,
  script: (n: readonly string[]) => string,
  parse: (n: readonly string[], out: string, missing: string) => A[],
  failed: (node: string, error: string) => A,
): Promise<A[]> {
  const controllers = slurmControllers(o.inventory());
  if (controllers.length === 0) return nodes.map((n) => failed(n, `no node of the inventory has the ${SLURM_CONTROLLER_ROLE} role: nothing to ask Slurm through`));
  const answers = new Map<string, A>();
  /** Nodes whose piece was sent to a controller: Slurm may have acted on them whatever came back. */
  const sent = new Set<string>();
  const problems: string[] = [];
  for (const controller of controllers) {
    const remaining = nodes.filter((n) => !answers.has(n));
    if (remaining.length === 0 || signal.aborted) break;
    let transport: Transport | undefined;
    try {
      transport = await o.transportFor(controller);
      for (const piece of chunks(remaining)) {
        if (signal.aborted) break;
        for (const n of piece) sent.add(n);
        const r = await transport.exec(script(piece), { timeoutMs: o.timeoutMs + piece.length * SLURM_MS_PER_NODE });
        for (const a of parse(piece, r.stdout, `no answer from ${controller.name} (exit ${r.code}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').pop()}` : ''})`)) answers.set(a.node, a);
      }
    } catch (err) {
      problems.push(`${controller.name}: ${withoutTarget((err as Error).message, controller.name)}`);
    } finally {
      await transport?.close().catch(() => undefined);
    }
  }
  const why = problems.length > 0 ? problems.join('; ') : 'stopped: no answer in time';
  // A piece cut short may have been carried out in part: say so rather than "not asked".
  return nodes.map(
    (n) =>
      answers.get(n) ??
      failed(n, sent.has(n) ? `no complete answer from Slurm (${why}); it may have taken the request all the same: see scontrol show node ${n}` : `not asked: no controller could be asked in time (${why})`),
  );
}
