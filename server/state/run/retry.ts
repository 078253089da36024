import type { RetrySpec } from '../types.js';
import type { StateOutcome } from './outcome.js';

export type Sleep = (ms: number) => Promise<void>;

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Salt's retry: run again, `interval` seconds apart, until the result equals `until` or `attempts` runs were made.
 * Not in test mode (as in Salt): a prediction does not get better by asking again. An exception (a dropped
 * connection) is not retried; it ends the node's run.
 */
export async function withRetry(spec: RetrySpec | undefined, test: boolean, sleep: Sleep, attempt: () => Promise<StateOutcome>): Promise<StateOutcome> {
  let outcome = await attempt();
  if (spec === undefined || test) return outcome;
  const attempts = Math.max(1, Math.floor(spec.attempts));
  const earlier: string[] = [];
  for (let made = 1; made < attempts && outcome.result !== spec.until; made++) {
    earlier.push(`Attempt ${made}: returned a result of ${String(outcome.result)}, with the comment: ${outcome.comment}`);
    await sleep(spec.interval * 1000);
    outcome = await attempt();
  }
  if (earlier.length === 0) return outcome;
  return { ...outcome, comment: [...earlier, `Attempt ${earlier.length + 1}: ${outcome.comment}`].join('\n') };
}
