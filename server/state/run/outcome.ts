import type { StateResult } from '../types.js';

/** What running one state produced, before it is stamped with identity and timing into a StateResult. */
export interface StateOutcome {
  result: boolean | null;
  changes: Record<string, unknown>;
  comment: string;
}

/** Why a node's run stopped before its last state: the connection dropped, or a failhard state failed. */
export interface RunAbort {
  cause: 'transport' | 'failhard';
  reason: string;
}

/** One node's run: every state of its plan has a result (skipped ones included), in execution order. */
export interface NodeRunOutcome {
  results: StateResult[];
  aborted?: RunAbort;
}

export function hasChanges(changes: Record<string, unknown>): boolean {
  return Object.keys(changes).length > 0;
}
