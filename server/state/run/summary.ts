import type { StateKey, StateResult } from '../types.js';
import { hasChanges } from './outcome.js';

/** Pure views of a run's results: counts, one overall verdict, and Salt's return shape. */

export interface RunCounts {
  /** Succeeded and changed something. */
  changed: number;
  /** Succeeded, nothing to change. */
  unchanged: number;
  failed: number;
  /** Test mode: would change (result null). */
  wouldChange: number;
  total: number;
}

export type RunVerdict = 'success' | 'changed' | 'failed';

export function countResults(results: readonly StateResult[]): RunCounts {
  const counts: RunCounts = { changed: 0, unchanged: 0, failed: 0, wouldChange: 0, total: results.length };
  for (const r of results) {
    if (r.result === false) counts.failed++;
    else if (r.result === null) counts.wouldChange++;
    else if (hasChanges(r.changes)) counts.changed++;
    else counts.unchanged++;
  }
  return counts;
}

/**
 * One word for a run. Any failure makes it 'failed'. Otherwise 'changed' when an apply changed something, or a
 * test predicts a change; else 'success' (the node already matched).
 */
export function runVerdict(results: readonly StateResult[], mode: 'apply' | 'test'): RunVerdict {
  const counts = countResults(results);
  if (counts.failed > 0) return 'failed';
  const changed = mode === 'test' ? counts.wouldChange + counts.changed : counts.changed;
  return changed > 0 ? 'changed' : 'success';
}

export interface SaltStateReturn {
  result: boolean | null;
  changes: Record<string, unknown>;
  comment: string;
  name: string;
  __id__: string;
  __sls__: string;
  __run_num__: number;
  /** Milliseconds, as a float (Salt's unit). */
  duration: number;
  /** 'HH:MM:SS.ffffff' like Salt's, but in UTC so it does not depend on the server's time zone. */
  start_time: string;
}

/** The run as `salt-call state.apply --out json` shows it, keyed by state key. */
export function toSaltReturn(results: readonly StateResult[]): Record<StateKey, SaltStateReturn> {
  const out: Record<StateKey, SaltStateReturn> = {};
  for (const r of results) {
    out[r.key] = {
      result: r.result,
      changes: r.changes,
      comment: r.comment,
      name: r.name,
      __id__: r.id,
      __sls__: r.sls,
      __run_num__: r.runNum,
      duration: r.durationMs,
      start_time: saltStartTime(r.startedAt),
    };
  }
  return out;
}

function saltStartTime(epochMs: number): string {
  const iso = new Date(epochMs).toISOString(); // 2024-01-02T03:04:05.678Z
  return `${iso.slice(11, 23)}000`;
}
