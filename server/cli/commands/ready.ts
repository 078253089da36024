import type { Command } from 'commander';
import type { ReadinessRunLine, ReadinessRunSummary } from '../../net/http/readiness-routes.js';
import type { Evidence } from '../../readiness/types.js';
import { readyNow, type NodeReadinessReport, type StoredReadiness } from '../../services/readiness-service.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { CliExit, EXIT_FAILED, UsageError } from '../exit.js';
import { printJson, table } from '../output.js';

/** One row per node, whichever way the evidence was obtained (stored or just checked). */
export interface ReadyRow {
  node: string;
  state?: string;
  /** undefined = never checked. */
  ready?: boolean;
  /** The last check passed, but the node has left the ready state since (reimaged, failed, reconfiguring). */
  stale?: boolean;
  /** Every check passed just now, but the lifecycle is not ready (states not applied, failed, being applied). */
  passedNotReady?: boolean;
  /** Why the run left the lifecycle as it was (the server's lifecycleNote). */
  note?: string;
  failing: Evidence[];
  /** Passing evidence that says something (a role without checks, a value the node did not report). */
  notes: Evidence[];
  checkedAt?: number;
}

const notable = (evidence: readonly Evidence[]): Evidence[] => evidence.filter((e) => e.pass && e.reason !== undefined);

function byName<T extends { node: string }>(a: T, b: T): number {
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

export function rowFromStored(s: StoredReadiness): ReadyRow {
  return {
    node: s.node,
    ...(s.state ? { state: s.state } : {}),
    ...(s.run ? { ready: s.ready, checkedAt: s.run.finishedAt ?? s.run.startedAt, ...(s.run.ready && !s.ready ? { stale: true } : {}) } : {}),
    failing: s.run ? s.run.evidence.filter((e) => !e.pass) : [],
    notes: s.run ? notable(s.run.evidence) : [],
  };
}

export function rowFromReport(r: NodeReadinessReport): ReadyRow {
  const ready = readyNow(r);
  return {
    node: r.node,
    ...(r.state ? { state: r.state } : {}),
    ready,
    ...(r.ready && !ready ? { passedNotReady: true } : {}),
    ...(r.lifecycleNote ? { note: r.lifecycleNote } : {}),
    failing: r.evidence.filter((e) => !e.pass),
    notes: notable(r.evidence),
    checkedAt: r.startedAt + r.durationMs,
  };
}

function readyCell(r: ReadyRow): string {
  if (r.ready === undefined) return 'never checked';
  if (r.ready) return 'yes';
  if (r.passedNotReady) return `NO (checks pass; node ${r.state ?? 'unknown to the store'})`;
  return r.stale ? `NO (passed, then ${r.state ?? 'gone'})` : 'NO';
}

/** Table (node, state, ready?, failing checks) then one line per failing check with its reason. */
export function formatReadyTable(rows: readonly ReadyRow[]): string {
  const sorted = [...rows].sort(byName);
  const head = ['NODE', 'STATE', 'READY', 'FAILING CHECKS', 'CHECKED'];
  const body = sorted.map((r) => [
    r.node,
    r.state,
    readyCell(r),
    r.failing.length > 0 ? [...new Set(r.failing.map((e) => e.check))].join(', ') : undefined,
    r.checkedAt !== undefined ? new Date(r.checkedAt).toISOString().replace(/\.\d+Z$/, 'Z') : undefined,
  ]);
  const details = sorted.flatMap((r) => [
    ...r.failing.map((e) => `${r.node}  ${e.check}: ${e.reason ?? `expected ${e.expected}, saw ${e.seen}`}`),
    ...r.notes.map((e) => `${r.node}  ${e.check} (passes): ${e.reason}`),
    ...(r.note ? [`${r.node}  lifecycle: ${r.note}`] : []),
  ]);
  const ready = sorted.filter((r) => r.ready === true).length;
  return `${table(head, body)}\n${details.length > 0 ? `\n${details.join('\n')}\n` : ''}\n${ready} of ${sorted.length} node(s) ready\n`;
}

function readinessProgress(r: NodeReadinessReport): string {
  if (readyNow(r)) return 'ready';
  if (r.ready) return `checks pass, node ${r.state ?? 'unknown to the store'}`;
  return `not ready (${r.failing.join(', ') || r.error?.message || 'no evidence'})`;
}

export function registerReady(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  program
    .command('ready [targets...]')
    .description('show whether nodes are ready (last stored evidence), or check them now with --check (exit 1 if any node is not ready)')
    .option('--check', 'run the readiness checks now instead of showing the last stored result')
    .action(async (targets: string[], opts: { check?: boolean }, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      let rows: ReadyRow[];
      if (opts.check) {
        if (targets.length === 0) throw new UsageError('rackseed ready --check needs at least one target (node, hostlist, group:NAME, role:NAME or key=value)');
        const reports: NodeReadinessReport[] = [];
        const progress = !out.json && process.stderr.isTTY;
        const summary = await client.postStream<ReadinessRunSummary>('/readiness/run', { targets }, (raw) => {
          const line = raw as ReadinessRunLine;
          if (line.type !== 'node') return;
          reports.push(line.report);
          if (progress) process.stderr.write(`  ${line.report.node}: ${readinessProgress(line.report)}\n`);
        });
        reports.sort(byName);
        if (out.json) printJson(out, { summary, nodes: reports });
        else out.write(formatReadyTable(reports.map(rowFromReport)));
        rows = reports.map(rowFromReport);
      } else {
        // One comma-joined parameter: the API refuses a repeated query parameter (an ambiguous one could slip a
        // value past a check), and the server splits at commas outside hostlist brackets.
        const query = targets.length > 0 ? `?targets=${encodeURIComponent(targets.join(','))}` : '';
        const stored = await client.get<{ nodes: StoredReadiness[] }>(`/readiness${query}`);
        const sorted = [...stored.nodes].sort(byName);
        if (out.json) printJson(out, { nodes: sorted });
        else out.write(formatReadyTable(sorted.map(rowFromStored)));
        rows = sorted.map(rowFromStored);
      }
      if (rows.some((r) => r.ready !== true)) throw new CliExit(EXIT_FAILED);
    });
}
