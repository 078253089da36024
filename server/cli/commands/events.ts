import { InvalidArgumentError, type Command } from 'commander';
import { RackseedError } from '../../model/errors.js';
import { describeEvent } from '../../net/http/dashboard/view-model.js';
import type { StoredEvent } from '../../store/types.js';
import type { ApiClient } from '../client.js';
import type { CliContext, GlobalOptions } from '../context.js';

/** One event as one line: time, node, type, and what happened in words (the dashboard's wording). */
export function eventLine(e: StoredEvent): string {
  const what = describeEvent(e.event);
  return `${new Date(e.at).toISOString()}  ${e.node}  ${e.event.type}${what ? `  ${what}` : ''}`;
}

function wholeNumber(name: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
}

export function eventsQuery(opts: { node?: string; after?: number; last?: number; limit?: number }): string {
  const q = new URLSearchParams();
  if (opts.node !== undefined) q.set('node', opts.node);
  if (opts.after !== undefined) q.set('after', String(opts.after));
  if (opts.last !== undefined) q.set('last', String(opts.last));
  if (opts.limit !== undefined) q.set('limit', String(opts.limit));
  return `/events?${q.toString()}`;
}

/** The server went away for a moment (a restart): following resumes after the last event seen, nothing is lost. */
function isUnreachable(error: unknown): boolean {
  return error instanceof RackseedError && error.details.unreachable !== undefined;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls for events after `after` until the process is stopped; prints each as it arrives. */
async function follow(client: ApiClient, node: string | undefined, after: number, intervalMs: number, emit: (e: StoredEvent) => void, warn: (s: string) => void): Promise<never> {
  let cursor = after;
  let away = false;
  for (;;) {
    try {
      const { events } = await client.get<{ events: StoredEvent[] }>(eventsQuery({ ...(node !== undefined ? { node } : {}), after: cursor, limit: 500 }));
      if (away) warn('rackseed: the server answers again\n');
      away = false;
      for (const e of events) {
        emit(e);
        cursor = Math.max(cursor, e.id);
      }
      // A full page means more are waiting: fetch the rest at once rather than after the interval.
      if (events.length === 500) continue;
    } catch (error) {
      if (!isUnreachable(error)) throw error;
      if (!away) warn(`${(error as Error).message}; retrying every ${intervalMs / 1000} s\n`);
      away = true;
    }
    await sleep(intervalMs);
  }
}

export function registerEvents(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  program
    .command('events [node]')
    .description("lifecycle events, newest last (every node, or one: its name, or a discovered machine's MAC); --follow keeps printing new ones as they are recorded")
    .option('--last <n>', 'how many of the newest events to show first', wholeNumber('--last', 0, 10_000), 20)
    .option('-f, --follow', 'keep printing events as they are recorded, until interrupted')
    .option('--interval <seconds>', 'how often --follow asks the server', wholeNumber('--interval', 1, 3600), 1)
    .action(async (node: string | undefined, o: { last: number; follow?: boolean; interval: number }, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      const emit = (e: StoredEvent): void => out.write(out.json ? `${JSON.stringify(e)}\n` : `${eventLine(e)}\n`);
      // The newest id is the cursor even when nothing is shown (--last 0): following starts after it.
      const { events } = await client.get<{ events: StoredEvent[] }>(eventsQuery({ ...(node !== undefined ? { node } : {}), last: Math.max(o.last, 1) }));
      const shown = o.last === 0 ? [] : events;
      for (const e of shown) emit(e);
      if (!o.follow) return;
      const after = events.at(-1)?.id ?? 0;
      await follow(client, node, after, o.interval * 1000, emit, (s) => process.stderr.write(s));
    });
}
