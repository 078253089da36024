import { Counter, Histogram, Registry } from 'prom-client';
import type { PruneResult, RunKind, RunResult } from '../store/types.js';

/**
 * Metrics that subsystems push as things happen (a run finished, a readiness check failed). They live in one
 * dedicated registry for the process, never prom-client's global one, so tests and libraries cannot pollute it.
 * The /metrics route merges it with the values it reads at scrape time (server/metrics/scrape-metrics.ts).
 */
export const runtimeRegistry = new Registry();

const runDuration = new Histogram({
  name: 'rackseed_run_duration_seconds',
  help: 'Duration of finished runs (state apply/test, readiness, audit) by kind and result',
  labelNames: ['kind', 'result'] as const,
  // From a quick readiness check to a long first apply (driver builds).
  buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400],
  registers: [runtimeRegistry],
});

const readinessFailures = new Counter({
  name: 'rackseed_readiness_failures_total',
  help: 'Readiness checks that failed, by check name',
  labelNames: ['check'] as const,
  registers: [runtimeRegistry],
});

const powerActions = new Counter({
  name: 'rackseed_power_actions_total',
  help: 'BMC power actions by action and outcome (ok, failed, timeout)',
  labelNames: ['action', 'outcome'] as const,
  registers: [runtimeRegistry],
});

const storePruned = new Counter({
  name: 'rackseed_store_pruned_total',
  help: 'Rows removed from the store by store.retention: runs, discovered machines, and the events of those machines',
  labelNames: ['what'] as const,
  registers: [runtimeRegistry],
});

/** Records one finished run; call once per run with its wall time. */
export function observeRun(kind: RunKind, seconds: number, result: RunResult): void {
  runDuration.observe({ kind, result }, seconds);
}

/** Counts one failed readiness check, e.g. countReadinessFailure('gpu_count'). */
export function countReadinessFailure(check: string): void {
  readinessFailures.inc({ check });
}

export function countPowerAction(action: string, outcome: 'ok' | 'failed' | 'timeout'): void {
  powerActions.inc({ action, outcome });
}

/** Counts what one pruning pass removed. */
export function countPruned(r: PruneResult): void {
  storePruned.inc({ what: 'runs' }, r.runs);
  storePruned.inc({ what: 'discovered_machines' }, r.discovered);
  storePruned.inc({ what: 'discovered_events' }, r.discoveredEvents);
}
