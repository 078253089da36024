import type { PrunePolicy, PruneResult } from './types.js';

/** Rows each transaction of prune() looks at by default: a few milliseconds of SQLite's write lock. */
export const PRUNE_BATCH_SIZE = 500;

/** A position in (started_at, id) order, where the next batch of old runs starts. */
export interface RunCursor {
  startedAt: number;
  id: string;
}

/** One backend's batches, each its own transaction. */
export interface PruneBatches {
  /** Looks at up to `limit` finished runs started before `before`, after `cursor`; deletes those not kept. */
  runs(q: { before: number; keep: number; limit: number; cursor: RunCursor }): Promise<{ deleted: number; next?: RunCursor }>;
  /** Forgets up to `limit` discovered machines last seen before `before`, with their events. */
  discovered(before: number, limit: number): Promise<{ machines: number; events: number }>;
}

/**
 * Lets requests waiting on the event loop (SQLite's calls are synchronous) and writers waiting for the lock go
 * between two batches.
 */
function betweenBatches(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** prune() for either backend: batch after batch until nothing is left or the signal stops it. */
export async function pruneInBatches(policy: PrunePolicy, batches: PruneBatches): Promise<PruneResult> {
  const limit = Math.max(1, Math.floor(policy.batchSize ?? PRUNE_BATCH_SIZE));
  // Below 1 a node's newest run could go, and readers rely on it.
  const keep = Math.max(1, Math.floor(policy.keepLastRunsPerNode));
  const result: PruneResult = { runs: 0, discovered: 0, discoveredEvents: 0 };
  if (policy.runsStartedBefore !== undefined) {
    let cursor: RunCursor | undefined = { startedAt: Number.MIN_SAFE_INTEGER, id: '' };
    while (cursor && !policy.signal?.aborted) {
      const batch = await batches.runs({ before: policy.runsStartedBefore, keep, limit, cursor });
      result.runs += batch.deleted;
      cursor = batch.next;
      if (cursor) await betweenBatches();
    }
  }
  if (policy.discoveredSeenBefore !== undefined) {
    while (!policy.signal?.aborted) {
      const batch = await batches.discovered(policy.discoveredSeenBefore, limit);
      result.discovered += batch.machines;
      result.discoveredEvents += batch.events;
      if (batch.machines < limit) break;
      await betweenBatches();
    }
  }
  return result;
}
