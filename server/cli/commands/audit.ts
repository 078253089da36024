import type { Command } from 'commander';
import type { Evidence } from '../../readiness/types.js';
import { fullyAudited, type AuditLine, type AuditNodeReport, type AuditSummary } from '../../services/audit-report.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { CliExit, EXIT_DRIFT, EXIT_FAILED } from '../exit.js';
import { printJson } from '../output.js';
import { formatNodeDetails } from './state.js';

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

function describeCheck(node: string, e: Evidence): string {
  return `${node}  check failed  ${e.check}: expected ${e.expected}, saw ${e.seen}${e.reason ? ` (${e.reason})` : ''}`;
}

function headline(r: AuditNodeReport): string {
  if (!r.reachable) return `${r.node}: UNREACHABLE: ${r.error ? `${r.error.code}: ${r.error.message}` : 'no connection'}`;
  if (!r.drift) return `${r.node}: clean (${plural(r.counts.total, 'state')}, ${plural(r.checks, 'check')})`;
  const parts = [`${plural(r.wouldChange.length, 'state')} would change`];
  if (r.failedStates.length > 0) parts.push(`${plural(r.failedStates.length, 'state')} failed`);
  parts.push(`${plural(r.failedChecks.length, 'check')} failed`);
  const notRun = r.failedChecks.filter((e) => e.notRun);
  const incomplete = r.error
    ? `; not fully audited: ${r.error.code}: ${r.error.message}`
    : notRun.length > 0
      ? `; not fully audited: ${plural(notRun.length, 'check')} could not run (${notRun.map((e) => `${e.check}: ${e.seen}`).join(', ')})`
      : '';
  return `${r.node}: DRIFT: ${parts.join(', ')}${incomplete}`;
}

/** One node's block: its verdict, then every state that would change (with the predicted diff) and every failed check. */
export function formatAuditNode(r: AuditNodeReport): string {
  const lines = [headline(r)];
  if (!r.reachable) return lines[0]!;
  const states = formatNodeDetails({ node: r.node, runId: r.runId, mode: 'test', result: 'changed', counts: r.counts, durationMs: r.durationMs, states: [...r.wouldChange, ...r.failedStates] });
  if (states !== '') lines.push(states);
  // base.ssh of an unreachable node is already the headline; the other failed checks are listed one a line.
  lines.push(...r.failedChecks.map((e) => describeCheck(r.node, e)));
  return lines.join('\n');
}

/** "3 nodes audited: 1 drifted, 1 clean, 1 unreachable". */
export function formatAuditSummary(s: AuditSummary): string {
  const incomplete = s.incomplete > 0 ? `; ${s.incomplete} not fully audited` : '';
  return `${plural(s.nodes, 'node')} audited: ${s.drifted} drifted, ${s.clean} clean, ${s.unreachable} unreachable${incomplete}`;
}

/** The drift report: one block per node (by name), then the summary line. */
export function formatAudit(reports: readonly AuditNodeReport[], summary: AuditSummary): string {
  const blocks = [...reports].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)).map(formatAuditNode);
  return `${blocks.length > 0 ? `${blocks.join('\n\n')}\n\n` : ''}${formatAuditSummary(summary)}\n`;
}

/** 1 when any node could not be audited completely (it may hide drift), else 3 on drift, else 0. */
export function auditExitCode(reports: readonly AuditNodeReport[]): number {
  if (!reports.every(fullyAudited)) return EXIT_FAILED;
  return reports.some((r) => r.drift) ? EXIT_DRIFT : 0;
}

export function registerAudit(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  program
    .command('audit [targets...]')
    .description(
      'drift report: dry-run every target node\'s states and run its readiness checks, changing nothing (no targets: every node); ' +
        'exit 3 on drift, 1 if a node could not be audited',
    )
    .action(async (targets: string[], _o, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      const reports: AuditNodeReport[] = [];
      const progress = !out.json && process.stderr.isTTY;
      const summary = await client.postStream<AuditSummary>('/audit', targets.length > 0 ? { targets } : {}, (raw) => {
        const line = raw as AuditLine;
        if (line.type !== 'node') return;
        reports.push(line.report);
        if (progress) process.stderr.write(`  ${line.report.node}: ${!line.report.reachable ? 'unreachable' : line.report.drift ? 'drift' : 'clean'}\n`);
      });
      reports.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
      if (out.json) printJson(out, { summary, nodes: reports });
      else out.write(formatAudit(reports, summary));
      const code = auditExitCode(reports);
      if (code !== 0) throw new CliExit(code);
    });
}
