/**
 * When to try a node again after a transient failure (no SSH yet, connection refused, a dropped link): exponential
 * backoff with jitter. The jitter keeps a rack of nodes that all failed together (a switch reboot) from retrying in
 * lock step and hammering the server and the network at the same instants.
 *
 * Pure: the random source is a parameter.
 */

export interface BackoffPolicy {
  /** The first retry waits about this long. */
  baseMs: number;
  /** No retry waits longer than this. */
  maxMs: number;
}

/**
 * The wait before retry number `attempt` (1 = after the first failure): the exponential step
 * min(max, base * 2^(attempt-1)), of which the upper half is jittered ("equal jitter"): never shorter than half the
 * step, so a retry cannot come right back, never longer than the step, so the cap holds.
 */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(attempt));
  // 2^(n-1) overflows to Infinity for large n; Math.min then caps it, so no special case is needed.
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** (n - 1));
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(step / 2 + (step / 2) * r);
}

/** The bounds of every wait of a convergence that fails `attempts` times: [lowest, highest] ms per retry. */
export function backoffBounds(attempts: number, policy: BackoffPolicy): Array<[number, number]> {
  return Array.from({ length: Math.max(0, attempts - 1) }, (_, i) => [backoffDelayMs(i + 1, policy, () => 0), backoffDelayMs(i + 1, policy, () => 1)]);
}
