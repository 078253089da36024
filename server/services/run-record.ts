import { RackseedError } from '../model/errors.js';
import type { Logger } from '../log.js';
import type { ObservedStore, RunResult } from '../store/types.js';

/** Waits between attempts to store a run's end: SQLITE_BUSY and a PostgreSQL failover last a moment. */
const RETRY_DELAYS_MS = [200, 1000];

/** What a run records at its start: the server that owns it, so a restart of that server can close it if it never ends. */
export function runOwner(serverName: string | undefined): Record<string, unknown> {
  return serverName === undefined ? {} : { server: serverName };
}

/**
 * Stores a run's end, retrying a failed write twice. A run whose end cannot be stored would read "running" for ever:
 * the error is logged with the run and thrown (as STORE_UNAVAILABLE, which convergence retries), and the server's next
 * start marks the run failed (ObservedStore.abandonRuns).
 */
export async function finishRunDurably(
  store: ObservedStore,
  log: Logger,
  runId: string,
  patch: { result: RunResult; finishedAt: number; summary: Record<string, unknown>; details: unknown },
): Promise<void> {
  let last: unknown;
  for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt - 1]));
    try {
      await store.finishRun(runId, patch);
      return;
    } catch (err) {
      last = err;
      log.warn({ runId, attempt: attempt + 1, err: (err as Error).message }, 'storing the end of a run failed');
    }
  }
  const message = (last as Error)?.message ?? String(last);
  log.error({ runId, result: patch.result, err: message }, 'the end of the run could not be stored: it reads "running" until this server starts again');
  throw new RackseedError('STORE_UNAVAILABLE', `the end of run ${runId} (${patch.result}) could not be stored: ${message}`, { runId }, { cause: last });
}
