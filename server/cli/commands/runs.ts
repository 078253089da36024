import { Option, type Command } from 'commander';
import type { Run } from '../../store/types.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { UsageError } from '../exit.js';
import { printJson } from '../output.js';
import { formatRun, formatRunList } from './runs-format.js';

/** The kinds an operator's verbs store (install runs are not recorded as runs yet). */
export const LISTED_RUN_KINDS = ['apply', 'test', 'readiness', 'audit'] as const;

/** The API's bounds for ?limit=, checked here so a typo is a usage error (exit 2), not a server round trip. */
export function parseRunLimit(text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > 1000) throw new UsageError(`--limit ${JSON.stringify(text)}: a whole number from 1 to 1000`);
  return n;
}

/** The query of GET /runs: targets as one comma-joined parameter (the API refuses a repeated one). */
export function runsQuery(targets: readonly string[], opts: { kind?: string; limit?: number }): string {
  const params: string[] = [];
  if (targets.length > 0) params.push(`targets=${encodeURIComponent(targets.join(','))}`);
  if (opts.kind) params.push(`kind=${encodeURIComponent(opts.kind)}`);
  if (opts.limit !== undefined) params.push(`limit=${opts.limit}`);
  return params.length > 0 ? `?${params.join('&')}` : '';
}

/**
 * `runs list` / `runs show`: the stored apply, test, readiness and audit runs (salt-run jobs.list_jobs and
 * jobs.lookup_jid). Two subcommands rather than `runs [TARGET...]` + `runs show ID`: a node named "show" would be
 * ambiguous. Reading history is not a check: both exit 0 whatever the runs found.
 */
export function registerRuns(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  const runs = program.command('runs').description('stored runs (apply, test, readiness, audit): list them, or show one with its per-state results');
  runs
    .command('list [targets...]')
    .description('stored runs newest first (no targets: the whole fleet): id, node, kind, started, duration, result')
    .addOption(new Option('--kind <kind>', 'only runs of this kind').choices(LISTED_RUN_KINDS))
    .option('--limit <n>', 'at most this many runs, 1 to 1000 (default 50)')
    .action(async (targets: string[], opts: { kind?: string; limit?: string }, cmd: Command) => {
      const limit = opts.limit === undefined ? undefined : parseRunLimit(opts.limit);
      const { client, out } = ctx(cmd.optsWithGlobals());
      const answer = await client.get<{ runs: Run[] }>(`/runs${runsQuery(targets, { ...(opts.kind ? { kind: opts.kind } : {}), ...(limit !== undefined ? { limit } : {}) })}`);
      if (out.json) printJson(out, answer);
      else out.write(formatRunList(answer.runs));
    });
  runs
    .command('show <id>')
    .description('one stored run: failed states first with their comments and changes, or the readiness evidence (a run id that does not exist exits 1)')
    .action(async (id: string, _o, cmd: Command) => {
      // "" or ".." would reach another route (the list, the API root) once the URL is normalised.
      if (id.trim() === '' || id === '.' || id === '..') throw new UsageError(`${JSON.stringify(id)} is not a run id (rackseed runs list shows them)`);
      const { client, out } = ctx(cmd.optsWithGlobals());
      const answer = await client.get<{ run: Run }>(`/runs/${encodeURIComponent(id)}`);
      if (out.json) printJson(out, answer);
      else out.write(formatRun(answer.run));
    });
}
