import { isRackseedError } from '../../model/errors.js';

/**
 * What an exception thrown while running a state means for the run. A dropped connection ends the node's run;
 * a timeout or any other error fails only the state it happened in.
 */
export type StateFailure =
  | { kind: 'connection-lost'; reason: string }
  | { kind: 'timeout'; comment: string }
  | { kind: 'error'; comment: string };

export function classifyStateError(error: unknown, defaultTimeoutMs: number): StateFailure {
  const message = error instanceof Error ? error.message : String(error);
  if (!isRackseedError(error)) return { kind: 'error', comment: message };
  switch (error.code) {
    case 'STATE_TRANSPORT':
      return { kind: 'connection-lost', reason: message };
    case 'STATE_TIMEOUT': {
      const { command, timeoutMs } = error.details;
      const limit = typeof timeoutMs === 'number' ? timeoutMs : defaultTimeoutMs;
      const what = typeof command === 'string' ? `: ${command}` : ` (${message})`;
      return { kind: 'timeout', comment: `Command timed out after ${limit} ms${what}` };
    }
    default:
      return { kind: 'error', comment: message };
  }
}
