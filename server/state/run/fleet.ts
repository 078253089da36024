import { RackseedError } from '../../model/errors.js';

/** One node's entry in a fleet run: its run's outcome, or why the run itself could not be carried out. */
export type FleetNodeResult<T, R> =
  | { target: T; status: 'completed'; outcome: R }
  | { target: T; status: 'failed'; reason: string; error: unknown };

export interface FleetOptions<T, R> {
  /** How many nodes run at once (at least 1). */
  concurrency: number;
  /** Called as each node finishes, in completion order. */
  onNodeDone?: (result: FleetNodeResult<T, R>) => void;
  /**
   * A target for which this is true when its turn comes is put back behind the others (it is taken once only such
   * targets remain). For a node another operation holds the lock of: waiting for it kept one of `concurrency` slots
   * idle for as long as that operation ran (a 10-minute driver install), while the fleet's other nodes queued.
   */
  deferWhile?: (target: T) => boolean;
}

/**
 * Runs `perNode` for every target with at most `concurrency` in flight. A node whose run throws (it could not be
 * reached, its plan did not compile) becomes a failed entry with the reason; it never stops the others. Results
 * come back in input order whatever order the nodes finished in.
 */
export async function runFleet<T, R>(targets: readonly T[], perNode: (target: T) => Promise<R>, options: FleetOptions<T, R>): Promise<Array<FleetNodeResult<T, R>>> {
  const { concurrency } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RackseedError('BAD_REQUEST', `fleet concurrency must be a positive integer, got ${concurrency}`, { concurrency });
  }
  const results = new Array<FleetNodeResult<T, R>>(targets.length);
  const callbackErrors: unknown[] = [];
  let next = 0;
  const deferred: number[] = [];
  const deferWhile = options.deferWhile;

  // Targets in input order, a deferred one skipped while others remain; then the deferred ones, those no longer
  // deferred first. JavaScript's single thread makes this safe between workers.
  const takeNext = (): number | undefined => {
    while (next < targets.length) {
      const index = next++;
      if (deferWhile?.(targets[index] as T)) deferred.push(index);
      else return index;
    }
    if (deferred.length === 0) return undefined;
    const ready = deferred.findIndex((i) => !deferWhile?.(targets[i] as T));
    return deferred.splice(ready === -1 ? 0 : ready, 1)[0];
  };

  const runOne = async (target: T): Promise<FleetNodeResult<T, R>> => {
    try {
      return { target, status: 'completed', outcome: await perNode(target) };
    } catch (error) {
      return { target, status: 'failed', reason: error instanceof Error ? error.message : String(error), error };
    }
  };

  // Each worker takes the next target until none are left.
  const worker = async (): Promise<void> => {
    while (next < targets.length || deferred.length > 0) {
      // A node that fails at once (no pinned key yet) and the store's synchronous writes never give the event loop a
      // turn: over 5,000 nodes DHCP, TFTP and HTTP went unanswered for seconds. One macrotask turn per node.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const index = takeNext();
      if (index === undefined) break;
      const result = await runOne(targets[index] as T);
      results[index] = result;
      try {
        options.onNodeDone?.(result);
      } catch (error) {
        callbackErrors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker));
  // A broken progress callback must not cut the other nodes' runs short, but it must not go unnoticed either.
  if (callbackErrors.length > 0) throw callbackErrors[0];
  return results;
}
