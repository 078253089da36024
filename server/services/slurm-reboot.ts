import type { SlurmCancelAnswer, SlurmNodeAnswer } from './slurm-reboot-script.js';
import { cancelScript, parseCancelAnswers, parseRebootAnswers, rebootRequestScript } from './slurm-reboot-script.js';
import { askSlurm, type SlurmControllerOptions } from './slurm-controller.js';

export { SLURM_COMPUTE_ROLE, SLURM_CONTROLLER_ROLE, slurmControllers } from './slurm-controller.js';

/** Asks Slurm to reboot compute nodes once their jobs are done, and withdraws such requests. */
export interface SlurmRebooter {
  requestReboots(nodes: readonly string[], signal: AbortSignal): Promise<SlurmNodeAnswer[]>;
  cancelReboots(nodes: readonly string[], signal: AbortSignal): Promise<SlurmCancelAnswer[]>;
}

export type SlurmRebooterOptions = SlurmControllerOptions;

/** reimage --when-idle through the inventory's Slurm controller (slurm-controller.ts). */
export function slurmRebooter(o: SlurmRebooterOptions): SlurmRebooter {
  return {
    requestReboots: (nodes, signal) => askSlurm<SlurmNodeAnswer>(o, nodes, signal, rebootRequestScript, parseRebootAnswers, (node, error) => ({ node, ok: false, error })),
    cancelReboots: (nodes, signal) => askSlurm<SlurmCancelAnswer>(o, nodes, signal, cancelScript, parseCancelAnswers, (node, error) => ({ node, outcome: 'failed', error })),
  };
}
