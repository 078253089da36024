import { backoffDelayMs, type BackoffPolicy } from './convergence-backoff.js';

/**
 * The scheduling half of convergence, with no I/O of its own (the job and the timers are injected): one convergence
 * per node at a time, at most `concurrency` at once over all nodes, triggers that arrive while a node is queued or
 * running coalesced into one (a second run, if one is running, so the newest inventory is what ends up applied),
 * and transient failures retried with backoff up to `maxAttempts`.
 */

/** What set a node's convergence off; kept for the log and the status view. */
export type TriggerReason = 'booted' | 'probe' | 'roles' | 'peer-hardware' | 'peer-membership' | 'k3s-server-answers' | 'resume' | 'operator';

/**
 * Triggers that do not cut a backoff short: the periodic probe, and another node's new hardware (during a rollout
 * every compute node's first apply sends one to the controller, which would then be retried without pause).
 */
const KEEPS_BACKOFF: ReadonlySet<TriggerReason> = new Set(['probe', 'peer-hardware']);

/** What a convergence attempt asks of the queue: nothing more, or another attempt after a backoff. */
export type AttemptOutcome = { kind: 'done' } | { kind: 'retry'; reason: string };

export interface AttemptContext {
  attempt: number;
  maxAttempts: number;
  reasons: TriggerReason[];
}

/** setTimeout/clearTimeout and a clock; tests drive them by hand. */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_TIMERS: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending retry must not keep a process alive that is otherwise done (CLI, tests).
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface QueueOptions {
  concurrency: number;
  maxAttempts: number;
  backoff: BackoffPolicy;
  /** One attempt at a node. It may throw; that is reported through onError and retried like a transient failure. */
  attempt: (node: string, ctx: AttemptContext) => Promise<AttemptOutcome>;
  onError?: (node: string, error: unknown) => void;
  onRetryScheduled?: (node: string, ctx: { attempt: number; delayMs: number; reason: string }) => void;
  timers?: Timers;
  random?: () => number;
}

export type NodePhase = 'queued' | 'running' | 'waiting';

export interface NodeQueueStatus {
  node: string;
  phase: NodePhase;
  /** The attempt running, queued, or (waiting) due next. */
  attempt: number;
  reasons: TriggerReason[];
  /** When the next attempt is due (waiting only), ms since the epoch. */
  nextAt?: number;
  /** Why the last attempt is being retried (waiting only). */
  lastError?: string;
  /** A trigger arrived while running: the node runs once more when this run ends. */
  rerun: boolean;
}

/** What a trigger did: started a convergence, joined one already queued/running/waiting, or nothing (closed). */
export type TriggerOutcome = 'queued' | 'coalesced' | 'closed';

interface Entry {
  phase: NodePhase;
  attempt: number;
  reasons: Set<TriggerReason>;
  rerun: boolean;
  timer?: unknown;
  nextAt?: number;
  lastError?: string;
}

export class ConvergenceQueue {
  private readonly entries = new Map<string, Entry>();
  private readonly ready: string[] = [];
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly timers: Timers;
  private readonly random: () => number;
  private closed = false;

  constructor(private readonly options: QueueOptions) {
    this.timers = options.timers ?? REAL_TIMERS;
    this.random = options.random ?? Math.random;
  }

  /**
   * Asks for a node's convergence. A node waiting out a backoff is tried at once unless the trigger says nothing new
   * about the node itself (KEEPS_BACKOFF): a fresh sign of life from it is worth more than the schedule.
   */
  trigger(node: string, reason: TriggerReason): TriggerOutcome {
    if (this.closed) return 'closed';
    const entry = this.entries.get(node);
    if (!entry) {
      this.entries.set(node, { phase: 'queued', attempt: 1, reasons: new Set([reason]), rerun: false });
      this.enqueue(node);
      return 'queued';
    }
    entry.reasons.add(reason);
    if (entry.phase === 'running') entry.rerun = true;
    else if (entry.phase === 'waiting' && !KEEPS_BACKOFF.has(reason)) {
      this.timers.clearTimeout(entry.timer);
      delete entry.timer;
      delete entry.nextAt;
      entry.phase = 'queued';
      this.enqueue(node);
    }
    return 'coalesced';
  }

  /** True while the node is queued, running or waiting to retry. */
  has(node: string): boolean {
    return this.entries.has(node);
  }

  status(): NodeQueueStatus[] {
    return [...this.entries].map(([node, e]) => ({
      node,
      phase: e.phase,
      attempt: e.attempt,
      reasons: [...e.reasons],
      rerun: e.rerun,
      ...(e.nextAt !== undefined ? { nextAt: e.nextAt } : {}),
      ...(e.lastError !== undefined ? { lastError: e.lastError } : {}),
    }));
  }

  /** Resolves once no node is queued, running or waiting for a retry. */
  whenIdle(): Promise<void> {
    if (this.entries.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops taking triggers, drops queued nodes and pending retries, and resolves when the running attempts end or
   * after `graceMs`, whichever is first (an apply can take minutes; shutdown must not).
   */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    this.ready.length = 0;
    for (const [node, e] of this.entries) {
      if (e.phase === 'running') continue;
      if (e.timer !== undefined) this.timers.clearTimeout(e.timer);
      this.entries.delete(node);
    }
    this.settleIdle();
    const running = [...this.inFlight.values()];
    if (running.length === 0) return;
    let timer: unknown;
    await Promise.race([
      Promise.allSettled(running),
      new Promise<void>((resolve) => {
        timer = this.timers.setTimeout(resolve, graceMs);
      }),
    ]);
    this.timers.clearTimeout(timer);
  }

  private enqueue(node: string): void {
    this.ready.push(node);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.inFlight.size < this.options.concurrency && this.ready.length > 0) {
      const node = this.ready.shift()!;
      const entry = this.entries.get(node);
      if (!entry || entry.phase !== 'queued') continue;
      entry.phase = 'running';
      const ctx: AttemptContext = { attempt: entry.attempt, maxAttempts: this.options.maxAttempts, reasons: [...entry.reasons] };
      entry.reasons.clear();
      const run = this.runAttempt(node, entry, ctx).finally(() => {
        this.inFlight.delete(node);
        this.pump();
        this.settleIdle();
      });
      this.inFlight.set(node, run);
    }
  }

  private async runAttempt(node: string, entry: Entry, ctx: AttemptContext): Promise<void> {
    let outcome: AttemptOutcome;
    try {
      outcome = await this.options.attempt(node, ctx);
    } catch (error) {
      // A crash (a store write that failed, say) is retried like an unreachable node: ending here would leave the
      // node `configuring` with nothing to move it on.
      this.options.onError?.(node, error);
      outcome = { kind: 'retry', reason: `convergence crashed: ${error instanceof Error ? error.message : String(error)}` };
    }
    if (this.closed) {
      this.entries.delete(node);
      return;
    }
    if (entry.rerun) {
      // Something changed while this ran (a role change, a reboot): start over with the newest inventory. An attempt
      // that found the node unreachable still counts, so triggers that keep coming cannot retry it forever.
      const attempt = outcome.kind === 'retry' ? entry.attempt + 1 : 1;
      this.entries.set(node, { phase: 'queued', attempt, reasons: entry.reasons, rerun: false });
      this.ready.push(node);
      return;
    }
    if (outcome.kind === 'retry' && entry.attempt < this.options.maxAttempts) {
      const delayMs = backoffDelayMs(entry.attempt, this.options.backoff, this.random);
      entry.attempt += 1;
      entry.phase = 'waiting';
      entry.lastError = outcome.reason;
      entry.nextAt = this.timers.now() + delayMs;
      entry.timer = this.timers.setTimeout(() => {
        if (this.entries.get(node) !== entry || entry.phase !== 'waiting') return;
        delete entry.timer;
        delete entry.nextAt;
        entry.phase = 'queued';
        this.enqueue(node);
      }, delayMs);
      this.options.onRetryScheduled?.(node, { attempt: entry.attempt, delayMs, reason: outcome.reason });
      return;
    }
    this.entries.delete(node);
  }

  private settleIdle(): void {
    if (this.entries.size > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
