import { describe, expect, it } from 'vitest';
import { backoffBounds, backoffDelayMs } from '../../server/services/convergence-backoff.js';

const policy = { baseMs: 5_000, maxMs: 300_000 };

describe('convergence backoff', () => {
  it('doubles from the base up to the cap, the upper half jittered', () => {
    expect(backoffBounds(10, policy)).toEqual([
      [2_500, 5_000],
      [5_000, 10_000],
      [10_000, 20_000],
      [20_000, 40_000],
      [40_000, 80_000],
      [80_000, 160_000],
      [150_000, 300_000],
      [150_000, 300_000],
      [150_000, 300_000],
    ]);
  });

  it('puts a jittered wait between its bounds, proportionally to the random draw', () => {
    expect(backoffDelayMs(3, policy, () => 0.5)).toBe(15_000);
    expect(backoffDelayMs(3, policy, () => 0.25)).toBe(12_500);
    // Out-of-range draws are clamped rather than trusted.
    expect(backoffDelayMs(3, policy, () => 7)).toBe(20_000);
    expect(backoffDelayMs(3, policy, () => -1)).toBe(10_000);
  });

  it('never exceeds the cap, however many attempts (no overflow to Infinity or NaN)', () => {
    for (const attempt of [11, 64, 1_025, 1e6]) {
      const d = backoffDelayMs(attempt, policy, () => 1);
      expect(d).toBe(300_000);
    }
  });

  it('treats attempts below 1 as the first', () => {
    expect(backoffDelayMs(0, policy, () => 1)).toBe(5_000);
    expect(backoffDelayMs(-3, policy, () => 0)).toBe(2_500);
  });

  it('spreads nodes that failed together (different draws, different waits)', () => {
    const draws = [0.1, 0.4, 0.7, 0.95];
    const waits = draws.map((r) => backoffDelayMs(4, policy, () => r));
    expect(new Set(waits).size).toBe(draws.length);
    for (const w of waits) expect(w).toBeGreaterThanOrEqual(20_000);
  });

  it('no bounds for a convergence that is allowed only one attempt', () => {
    expect(backoffBounds(1, policy)).toEqual([]);
  });
});
