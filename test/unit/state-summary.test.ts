import { describe, expect, it } from 'vitest';
import { countResults, runVerdict, toSaltReturn } from '../../server/state/run/summary.js';
import type { StateResult } from '../../server/state/types.js';

function result(id: string, outcome: boolean | null, changes: Record<string, unknown> = {}, runNum = 0): StateResult {
  return {
    key: `test_|-${id}_|-${id}_|-nop`,
    id,
    name: id,
    sls: 'unit.test',
    module: 'test',
    fun: 'nop',
    result: outcome,
    changes,
    comment: `comment of ${id}`,
    durationMs: 12.5,
    startedAt: Date.UTC(2024, 0, 2, 3, 4, 5, 678),
    runNum,
  };
}

describe('run summary', () => {
  it('counts changed, unchanged, failed and would-change states', () => {
    const results = [result('a', true, { x: 1 }), result('b', true), result('c', true), result('d', false), result('e', null, { y: 2 })];
    expect(countResults(results)).toEqual({ changed: 1, unchanged: 2, failed: 1, wouldChange: 1, total: 5 });
    expect(countResults([])).toEqual({ changed: 0, unchanged: 0, failed: 0, wouldChange: 0, total: 0 });
  });

  it.each([
    { mode: 'apply' as const, results: [result('a', true), result('b', true)], verdict: 'success' },
    { mode: 'apply' as const, results: [result('a', true, { x: 1 }), result('b', true)], verdict: 'changed' },
    { mode: 'apply' as const, results: [result('a', true, { x: 1 }), result('b', false)], verdict: 'failed' },
    { mode: 'test' as const, results: [result('a', true), result('b', true)], verdict: 'success' },
    { mode: 'test' as const, results: [result('a', true), result('b', null, { x: 1 })], verdict: 'changed' },
    { mode: 'test' as const, results: [result('a', null, { x: 1 }), result('b', false)], verdict: 'failed' },
  ])('$mode run of $results.length states -> $verdict', ({ mode, results, verdict }) => {
    expect(runVerdict(results, mode)).toBe(verdict);
  });

  it('renders the Salt return keyed by state key', () => {
    const salt = toSaltReturn([result('a', true, { x: 1 }, 0), result('b', null, {}, 1)]);
    expect(Object.keys(salt)).toEqual(['test_|-a_|-a_|-nop', 'test_|-b_|-b_|-nop']);
    expect(salt['test_|-a_|-a_|-nop']).toEqual({
      result: true,
      changes: { x: 1 },
      comment: 'comment of a',
      name: 'a',
      __id__: 'a',
      __sls__: 'unit.test',
      __run_num__: 0,
      duration: 12.5,
      start_time: '03:04:05.678000',
    });
    expect(salt['test_|-b_|-b_|-nop']?.result).toBeNull();
    expect(salt['test_|-b_|-b_|-nop']?.__run_num__).toBe(1);
  });
});
