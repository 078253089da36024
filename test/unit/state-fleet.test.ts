import { describe, expect, it } from 'vitest';
import { runFleet, type FleetNodeResult } from '../../server/state/run/fleet.js';
import type { NodeRunOutcome } from '../../server/state/run/outcome.js';

/** A promise the test settles by hand, so completion order is chosen by the test, not by timing. */
function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(error: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback run. */
/** A few event-loop turns: the fleet takes one per node before it starts it. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
};

const outcomeFor = (node: string): NodeRunOutcome => ({
  results: [{ key: `test_|-${node}_|-${node}_|-nop`, id: node, name: node, sls: 's', module: 'test', fun: 'nop', result: true, changes: {}, comment: '', durationMs: 0, startedAt: 0, runNum: 0 }],
});

describe('runFleet', () => {
  it('a node whose run throws becomes a failed entry; the others complete, in input order', async () => {
    const done: string[] = [];
    const results = await runFleet(
      ['n1', 'n2', 'n3', 'n4'],
      async (node) => {
        if (node === 'n2') throw new Error('ssh: connect to host n2 port 22: No route to host');
        if (node === 'n3') throw 'not an Error';
        return outcomeFor(node);
      },
      { concurrency: 2, onNodeDone: (r) => done.push(r.target) },
    );
    expect(results.map((r) => [r.target, r.status])).toEqual([
      ['n1', 'completed'],
      ['n2', 'failed'],
      ['n3', 'failed'],
      ['n4', 'completed'],
    ]);
    expect(results[1]).toMatchObject({ status: 'failed', reason: 'ssh: connect to host n2 port 22: No route to host' });
    expect(results[2]).toMatchObject({ status: 'failed', reason: 'not an Error' });
    expect(results[3]).toEqual({ target: 'n4', status: 'completed', outcome: outcomeFor('n4') });
    expect([...done].sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
  });

  it('a synchronous throw from perNode is a failed node too', async () => {
    const results = await runFleet(['a', 'b'], (node) => {
      if (node === 'a') throw new Error('no plan for a');
      return Promise.resolve(outcomeFor(node));
    }, { concurrency: 1 });
    expect(results.map((r) => r.status)).toEqual(['failed', 'completed']);
  });

  it('never has more than `concurrency` nodes in flight, and keeps input order whatever the completion order', async () => {
    const gates = new Map<string, ReturnType<typeof deferred<NodeRunOutcome>>>();
    const started: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const finished: string[] = [];
    const fleet = runFleet(
      ['n1', 'n2', 'n3', 'n4', 'n5'],
      async (node) => {
        started.push(node);
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const gate = deferred<NodeRunOutcome>();
        gates.set(node, gate);
        try {
          return await gate.promise;
        } finally {
          inFlight--;
        }
      },
      { concurrency: 2, onNodeDone: (r: FleetNodeResult<string, NodeRunOutcome>) => finished.push(r.target) },
    );

    await settle();
    expect(started).toEqual(['n1', 'n2']);
    gates.get('n2')?.resolve(outcomeFor('n2'));
    await settle();
    expect(started).toEqual(['n1', 'n2', 'n3']);
    gates.get('n3')?.reject(new Error('connection refused'));
    await settle();
    expect(started).toEqual(['n1', 'n2', 'n3', 'n4']);
    gates.get('n1')?.resolve(outcomeFor('n1'));
    gates.get('n4')?.resolve(outcomeFor('n4'));
    await settle();
    gates.get('n5')?.resolve(outcomeFor('n5'));
    const results = await fleet;

    expect(maxInFlight).toBe(2);
    expect(finished).toEqual(['n2', 'n3', 'n1', 'n4', 'n5']);
    expect(results.map((r) => [r.target, r.status])).toEqual([
      ['n1', 'completed'],
      ['n2', 'completed'],
      ['n3', 'failed'],
      ['n4', 'completed'],
      ['n5', 'completed'],
    ]);
  });

  it('runs every node at once when concurrency exceeds the fleet', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const gate = deferred<void>();
    const fleet = runFleet(['a', 'b', 'c'], async (node) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await gate.promise;
      inFlight--;
      return outcomeFor(node);
    }, { concurrency: 10 });
    await settle();
    expect(inFlight).toBe(3);
    gate.resolve();
    expect((await fleet).every((r) => r.status === 'completed')).toBe(true);
    expect(maxInFlight).toBe(3);
  });

  it('an empty fleet is an empty result; a bad concurrency is refused', async () => {
    await expect(runFleet([], async () => outcomeFor('x'), { concurrency: 1 })).resolves.toEqual([]);
    await expect(runFleet(['a'], async () => outcomeFor('a'), { concurrency: 0 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(runFleet(['a'], async () => outcomeFor('a'), { concurrency: 1.5 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('a throwing onNodeDone does not cut the other nodes short, and is reported after they finish', async () => {
    const ran: string[] = [];
    const fleet = runFleet(['a', 'b', 'c'], async (node) => {
      ran.push(node);
      return outcomeFor(node);
    }, {
      concurrency: 1,
      onNodeDone: (r) => {
        if (r.target === 'a') throw new Error('progress sink broke');
      },
    });
    await expect(fleet).rejects.toThrow('progress sink broke');
    expect(ran).toEqual(['a', 'b', 'c']);
  });

  it('gives the event loop a turn per node, also when every node fails at once (timers and sockets are served meanwhile)', async () => {
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 0);
    const started = Date.now();
    try {
      // 2,000 nodes that fail synchronously-fast, as nodes without a pinned host key do.
      await runFleet(Array.from({ length: 2000 }, (_, i) => `n${i}`), async () => {
        const until = Date.now() + 1;
        while (Date.now() < until) {
          /* the store's synchronous write */
        }
        throw new Error('no pinned host key');
      }, { concurrency: 8 });
    } finally {
      clearInterval(timer);
    }
    // Before: not one timer ran until the whole fleet was done. Now the loop turns between nodes.
    expect(ticks).toBeGreaterThan(Math.min(50, (Date.now() - started) / 20));
  });

  it('a deferred target waits at the back while others remain, and is still run (input order kept in the results)', async () => {
    const busy = new Set(['a', 'b']);
    const started: string[] = [];
    const gates = new Map<string, ReturnType<typeof deferred<NodeRunOutcome>>>();
    const fleet = runFleet(
      ['a', 'b', 'c', 'd'],
      async (node) => {
        started.push(node);
        const gate = deferred<NodeRunOutcome>();
        gates.set(node, gate);
        return gate.promise;
      },
      { concurrency: 1, deferWhile: (node) => busy.has(node) },
    );
    await settle();
    expect(started).toEqual(['c']);
    gates.get('c')?.resolve(outcomeFor('c'));
    await settle();
    expect(started).toEqual(['c', 'd']);
    // Only deferred targets are left: the one no longer deferred goes first, then the other one all the same.
    busy.delete('b');
    gates.get('d')?.resolve(outcomeFor('d'));
    await settle();
    expect(started).toEqual(['c', 'd', 'b']);
    gates.get('b')?.resolve(outcomeFor('b'));
    await settle();
    expect(started).toEqual(['c', 'd', 'b', 'a']);
    gates.get('a')?.resolve(outcomeFor('a'));
    const results = await fleet;
    expect(results.map((r) => r.target)).toEqual(['a', 'b', 'c', 'd']);
  });
});
