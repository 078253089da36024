import { describe, expect, it } from 'vitest';
import { ConvergenceQueue, type AttemptContext, type AttemptOutcome, type QueueOptions, type Timers } from '../../server/services/convergence-queue.js';

/** Timers driven by the test: nothing fires until advance() says so. */
class ManualTimers implements Timers {
  private t = 1_000_000;
  private seq = 0;
  readonly pending = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.pending.delete(h as number);
  }
  /** Moves the clock and fires what came due, in order. */
  async advance(ms: number): Promise<void> {
    const until = this.t + ms;
    for (;;) {
      const due = [...this.pending].filter(([, p]) => p.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await settle();
    }
    this.t = until;
  }
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

interface Deferred {
  node: string;
  ctx: AttemptContext;
  finish(o?: AttemptOutcome): void;
  fail(e: Error): void;
}

/** An attempt function whose calls the test finishes by hand. */
function controlledAttempts() {
  const calls: Deferred[] = [];
  let running = 0;
  let maxRunning = 0;
  const attempt = (node: string, ctx: AttemptContext): Promise<AttemptOutcome> =>
    new Promise((resolve, reject) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      calls.push({
        node,
        ctx,
        finish: (o = { kind: 'done' }) => {
          running--;
          resolve(o);
        },
        fail: (e) => {
          running--;
          reject(e);
        },
      });
    });
  return { calls, attempt, maxRunning: () => maxRunning };
}

function queueWith(over: Partial<QueueOptions> & Pick<QueueOptions, 'attempt'>, timers = new ManualTimers()) {
  const errors: Array<[string, unknown]> = [];
  const q = new ConvergenceQueue({
    concurrency: 2,
    maxAttempts: 4,
    backoff: { baseMs: 1_000, maxMs: 10_000 },
    timers,
    random: () => 0,
    onError: (node, e) => errors.push([node, e]),
    ...over,
  });
  return { q, timers, errors };
}

describe('convergence queue', () => {
  it('coalesces triggers: repeated ones while queued are one run; any number while running is ONE more run', async () => {
    const a = controlledAttempts();
    const { q } = queueWith({ attempt: a.attempt, concurrency: 1 });
    expect(q.trigger('blocker', 'booted')).toBe('queued');
    expect(q.trigger('n1', 'probe')).toBe('queued');
    expect(q.trigger('n1', 'booted')).toBe('coalesced');
    expect(q.trigger('n1', 'roles')).toBe('coalesced');
    await settle();
    expect(a.calls.map((c) => c.node)).toEqual(['blocker']);
    a.calls[0]!.finish();
    await settle();
    expect(a.calls.map((c) => c.node)).toEqual(['blocker', 'n1']);
    expect(a.calls[1]!.ctx).toEqual({ attempt: 1, maxAttempts: 4, reasons: ['probe', 'booted', 'roles'] });

    // While n1 runs: five triggers make exactly one rerun, started only after this run ends.
    for (let i = 0; i < 5; i++) expect(q.trigger('n1', 'roles')).toBe('coalesced');
    expect(q.status()).toEqual([{ node: 'n1', phase: 'running', attempt: 1, reasons: ['roles'], rerun: true }]);
    await settle();
    expect(a.calls).toHaveLength(2);
    a.calls[1]!.finish();
    await settle();
    expect(a.calls).toHaveLength(3);
    expect(a.calls[2]!.ctx).toEqual({ attempt: 1, maxAttempts: 4, reasons: ['roles'] });
    a.calls[2]!.finish();
    await q.whenIdle();
    expect(q.status()).toEqual([]);
    expect(a.calls).toHaveLength(3);
  });

  it('runs one convergence per node at a time and at most `concurrency` over all nodes, first come first served', async () => {
    const a = controlledAttempts();
    const { q } = queueWith({ attempt: a.attempt, concurrency: 2 });
    for (const n of ['n1', 'n2', 'n3', 'n4', 'n5']) q.trigger(n, 'probe');
    await settle();
    expect(a.calls.map((c) => c.node)).toEqual(['n1', 'n2']);
    a.calls[1]!.finish();
    await settle();
    expect(a.calls.map((c) => c.node)).toEqual(['n1', 'n2', 'n3']);
    a.calls[0]!.finish();
    a.calls[2]!.finish();
    await settle();
    expect(a.calls.map((c) => c.node)).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
    a.calls[3]!.finish();
    a.calls[4]!.finish();
    await q.whenIdle();
    expect(a.maxRunning()).toBe(2);
  });

  it('retries a transient failure after a growing backoff, up to maxAttempts, then stops', async () => {
    const a = controlledAttempts();
    const { q, timers } = queueWith({ attempt: a.attempt, maxAttempts: 4 });
    q.trigger('n1', 'booted');
    await settle();
    const waits: number[] = [];
    for (let i = 0; i < 3; i++) {
      a.calls[i]!.finish({ kind: 'retry', reason: 'STATE_TRANSPORT: refused' });
      await settle();
      const [s] = q.status();
      expect(s).toMatchObject({ node: 'n1', phase: 'waiting', attempt: i + 2, lastError: 'STATE_TRANSPORT: refused' });
      waits.push(s!.nextAt! - timers.now());
      // Not a moment before the wait is over.
      await timers.advance(waits[i]! - 1);
      expect(a.calls).toHaveLength(i + 1);
      await timers.advance(1);
      expect(a.calls).toHaveLength(i + 2);
      expect(a.calls[i + 1]!.ctx.attempt).toBe(i + 2);
    }
    // random() = 0: the lower bound of each step, base 1 s doubling.
    expect(waits).toEqual([500, 1_000, 2_000]);
    // The 4th attempt is the last: asking for a retry again ends the convergence.
    a.calls[3]!.finish({ kind: 'retry', reason: 'STATE_TRANSPORT: refused' });
    await q.whenIdle();
    expect(q.status()).toEqual([]);
    expect(timers.pending.size).toBe(0);
    expect(a.calls).toHaveLength(4);
  });

  it('a done outcome is never retried', async () => {
    const a = controlledAttempts();
    const { q, timers } = queueWith({ attempt: a.attempt });
    q.trigger('n1', 'probe');
    await settle();
    a.calls[0]!.finish({ kind: 'done' });
    await q.whenIdle();
    expect(timers.pending.size).toBe(0);
    await timers.advance(1_000_000);
    expect(a.calls).toHaveLength(1);
  });

  it('a fresh sign of life cuts a backoff short; the periodic probe and a peer\'s new hardware do not', async () => {
    const a = controlledAttempts();
    const { q, timers } = queueWith({ attempt: a.attempt, backoff: { baseMs: 60_000, maxMs: 60_000 } });
    q.trigger('n1', 'probe');
    await settle();
    a.calls[0]!.finish({ kind: 'retry', reason: 'refused' });
    await settle();
    expect(q.trigger('n1', 'probe')).toBe('coalesced');
    expect(q.trigger('n1', 'peer-hardware')).toBe('coalesced');
    await settle();
    expect(a.calls).toHaveLength(1);
    expect(q.status()[0]?.phase).toBe('waiting');
    expect(q.trigger('n1', 'booted')).toBe('coalesced');
    await settle();
    expect(a.calls).toHaveLength(2);
    expect(a.calls[1]!.ctx.attempt).toBe(2);
    expect(timers.pending.size).toBe(0);
    a.calls[1]!.finish();
    await q.whenIdle();
  });

  it('a trigger during an attempt that found the node unreachable reruns it, counting that attempt; a later success starts from 1', async () => {
    const a = controlledAttempts();
    const { q } = queueWith({ attempt: a.attempt, maxAttempts: 3 });
    q.trigger('ctl', 'booted');
    await settle();
    q.trigger('ctl', 'peer-hardware');
    a.calls[0]!.finish({ kind: 'retry', reason: 'refused' });
    await settle();
    expect(a.calls.map((c) => c.ctx.attempt)).toEqual([1, 2]);
    q.trigger('ctl', 'peer-hardware');
    a.calls[1]!.finish({ kind: 'retry', reason: 'refused' });
    await settle();
    // The third attempt is the last (maxAttempts 3): the attempt decides to give up, however many triggers came.
    expect(a.calls.map((c) => c.ctx.attempt)).toEqual([1, 2, 3]);
    q.trigger('ctl', 'roles');
    a.calls[2]!.finish({ kind: 'done' });
    await settle();
    expect(a.calls.map((c) => c.ctx.attempt)).toEqual([1, 2, 3, 1]);
    a.calls[3]!.finish();
    await q.whenIdle();
  });

  it('an attempt that throws is reported and retried with backoff (never left hanging); others carry on', async () => {
    const a = controlledAttempts();
    const { q, errors, timers } = queueWith({ attempt: a.attempt });
    q.trigger('n1', 'probe');
    q.trigger('n2', 'probe');
    await settle();
    a.calls[0]!.fail(new Error('store down'));
    a.calls[1]!.finish();
    await settle();
    expect(errors).toEqual([['n1', new Error('store down')]]);
    expect(q.status()).toEqual([expect.objectContaining({ node: 'n1', phase: 'waiting', attempt: 2, lastError: 'convergence crashed: store down' })]);
    await timers.advance(1_000);
    await settle();
    expect(a.calls.map((c) => [c.node, c.ctx.attempt])).toEqual([['n1', 1], ['n2', 1], ['n1', 2]]);
    a.calls[2]!.finish();
    await q.whenIdle();
    expect(q.has('n1')).toBe(false);
  });

  it('close drops queued nodes and pending retries, waits for the running attempt, and refuses new triggers', async () => {
    const a = controlledAttempts();
    const { q, timers } = queueWith({ attempt: a.attempt, concurrency: 1 });
    q.trigger('waiter', 'probe');
    await settle();
    a.calls[0]!.finish({ kind: 'retry', reason: 'refused' });
    await settle();
    q.trigger('runner', 'probe');
    q.trigger('queued', 'probe');
    await settle();
    expect(a.calls.map((c) => c.node)).toEqual(['waiter', 'runner']);
    let closed = false;
    const closing = q.close(60_000).then(() => (closed = true));
    await settle();
    expect(closed).toBe(false);
    expect(q.trigger('late', 'booted')).toBe('closed');
    a.calls[1]!.finish({ kind: 'retry', reason: 'refused' });
    await closing;
    await q.whenIdle();
    expect(q.status()).toEqual([]);
    // Only close's own grace timer could be left, and it was cleared.
    expect(timers.pending.size).toBe(0);
    expect(a.calls.map((c) => c.node)).toEqual(['waiter', 'runner']);
  });

  it('close gives up waiting on an attempt that outlives the grace period', async () => {
    const a = controlledAttempts();
    const { q, timers } = queueWith({ attempt: a.attempt });
    q.trigger('slow', 'probe');
    await settle();
    let closed = false;
    const closing = q.close(5_000).then(() => (closed = true));
    await timers.advance(4_999);
    expect(closed).toBe(false);
    await timers.advance(1);
    await closing;
    expect(closed).toBe(true);
    a.calls[0]!.finish();
  });
});
