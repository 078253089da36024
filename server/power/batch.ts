/** The outcome of one item of a batch: its value, or why it failed (a timeout is its own kind of failure). */
export type Settled<R> =
  | { ok: true; value: R; durationMs: number }
  | { ok: false; error: string; timedOut: boolean; durationMs: number };

export interface BatchOptions {
  /** At most this many calls in flight. */
  concurrency: number;
  /** Each call gets this long; then its signal aborts and its slot is freed, whether or not it stopped. */
  timeoutMs: number;
}

class TimedOut extends Error {}

/**
 * Runs `work` over `items` with bounded concurrency and a timeout per call. A call that ignores its signal (a hung
 * BMC, a child that will not die) is abandoned at its deadline: its slot goes to the next item, so one bad BMC
 * never holds up the others. Results come back in input order; `onSettled` sees each as it finishes.
 */
export async function runBatch<T, R>(
  items: readonly T[],
  options: BatchOptions,
  work: (item: T, signal: AbortSignal) => Promise<R>,
  onSettled?: (item: T, result: Settled<R>, index: number) => void,
): Promise<Array<Settled<R>>> {
  const results = new Array<Settled<R>>(items.length);
  let next = 0;
  const runOne = async (index: number): Promise<void> => {
    const item = items[index]!;
    const controller = new AbortController();
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(new TimedOut());
        controller.abort(new TimedOut());
      }, options.timeoutMs);
    });
    let result: Settled<R>;
    try {
      const value = await Promise.race([work(item, controller.signal), deadline]);
      result = { ok: true, value, durationMs: Math.round(performance.now() - started) };
    } catch (e) {
      const timedOut = e instanceof TimedOut || controller.signal.aborted;
      result = {
        ok: false,
        timedOut,
        error: timedOut ? `no answer within ${options.timeoutMs / 1000} s` : e instanceof Error ? e.message : String(e),
        durationMs: Math.round(performance.now() - started),
      };
    } finally {
      clearTimeout(timer);
    }
    results[index] = result;
    onSettled?.(item, result, index);
  };
  const lane = async (): Promise<void> => {
    while (next < items.length) await runOne(next++);
  };
  const lanes = Math.max(1, Math.min(options.concurrency, items.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  return results;
}
