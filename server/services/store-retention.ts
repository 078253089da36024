import type { StoreRetentionConfig } from '../config.js';
import type { Logger } from '../log.js';
import { countPruned } from '../metrics/runtime-metrics.js';
import type { ObservedStore, PrunePolicy, PruneResult } from '../store/types.js';

/** How often the server prunes the store after the prune at its start. */
export const PRUNE_INTERVAL_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** What store.retention allows removing at `now`: a setting of 0 days removes nothing of that sort. */
export function prunePolicyFor(retention: StoreRetentionConfig, now: number): PrunePolicy {
  return {
    ...(retention.runsDays > 0 ? { runsStartedBefore: now - retention.runsDays * DAY_MS } : {}),
    keepLastRunsPerNode: retention.keepLastRunsPerNode,
    ...(retention.discoveredDays > 0 ? { discoveredSeenBefore: now - retention.discoveredDays * DAY_MS } : {}),
  };
}

export interface StoreRetentionOptions {
  store: ObservedStore;
  retention: StoreRetentionConfig;
  log: Logger;
  intervalMs?: number;
  now?: () => number;
}

/**
 * Prunes the store at start and then every hour, so run records and discovered machines do not grow the database
 * without bound. With several servers on one PostgreSQL store each prunes: the deletes check every row again, so two
 * at once remove each row once.
 */
export class StoreRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PruneResult | undefined> | undefined;
  private readonly stopping = new AbortController();

  constructor(private readonly o: StoreRetentionOptions) {}

  /** Starts pruning in the background: a large first backlog must not hold up the server's start. */
  start(): void {
    const { runsDays, discoveredDays } = this.o.retention;
    if (runsDays === 0 && discoveredDays === 0) return;
    void this.pruneNow();
    this.timer = setInterval(() => void this.pruneNow(), this.o.intervalMs ?? PRUNE_INTERVAL_MS);
    this.timer.unref();
  }

  /** One pruning pass (joins the one under way); undefined if it failed (logged) or the server is stopping. */
  pruneNow(): Promise<PruneResult | undefined> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops the timer and a pass under way (between two batches), and waits for it: the store closes next. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.stopping.abort();
    await this.running;
  }

  private async pass(): Promise<PruneResult | undefined> {
    if (this.stopping.signal.aborted) return undefined;
    const now = (this.o.now ?? Date.now)();
    const started = Date.now();
    try {
      const result = await this.o.store.prune({ ...prunePolicyFor(this.o.retention, now), signal: this.stopping.signal });
      countPruned(result);
      if (result.runs > 0 || result.discovered > 0) {
        this.o.log.info({ ...result, ms: Date.now() - started }, 'pruned old runs and long-unseen discovered machines from the store');
      }
      return result;
    } catch (err) {
      this.o.log.warn({ err }, 'could not prune the store; trying again at the next interval');
      return undefined;
    }
  }
}
