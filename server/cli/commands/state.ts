import type { Command } from 'commander';
import type { StateRunLine, StateRunSummary } from '../../net/http/state-routes.js';
import type { NodeRunReport } from '../../services/state-service.js';
import { toSaltReturn } from '../../state/run/summary.js';
import type { StateResult } from '../../state/types.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { CliExit, EXIT_DRIFT, EXIT_FAILED } from '../exit.js';
import { printJson, table } from '../output.js';

function resultWord(r: StateResult, mode: 'apply' | 'test'): string {
  if (r.result === false) return 'FAILED';
  if (r.result === null) return 'would change';
  return Object.keys(r.changes).length > 0 ? (mode === 'apply' ? 'changed' : 'would change') : 'ok';
}

/** Changes as an operator reads them: a diff verbatim, anything else as compact JSON. */
function describeChanges(changes: Record<string, unknown>): string[] {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(changes)) {
    if (k === 'diff' && typeof v === 'string') lines.push(...v.replace(/\n$/, '').split('\n').map((l) => `      ${l}`));
    else lines.push(`      ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return lines;
}

/** The details after the table: every state that changed, would change or failed; unchanged states are counted only. */
export function formatNodeDetails(report: NodeRunReport): string {
  const out: string[] = [];
  if (report.error) {
    // Transport errors already start with the node's name; the line names it once.
    const message = report.error.message.startsWith(`${report.node}: `) ? report.error.message.slice(report.node.length + 2) : report.error.message;
    out.push(`${report.node}: ${report.error.code}: ${message}`);
  }
  for (const s of report.states) {
    const word = resultWord(s, report.mode);
    if (word === 'ok') continue;
    out.push(`${report.node}  ${word.padEnd(12)} ${s.module}.${s.fun}  ${s.id}${s.name !== s.id ? ` (${s.name})` : ''}  [${s.sls}]`);
    if (s.comment) out.push(`      ${s.comment.split('\n').join('\n      ')}`);
    out.push(...describeChanges(s.changes));
  }
  return out.join('\n');
}

export function formatStateRun(reports: readonly NodeRunReport[], summary: StateRunSummary): string {
  const test = summary.mode === 'test';
  const head = ['NODE', 'RESULT', test ? 'WOULD CHANGE' : 'CHANGED', 'UNCHANGED', 'FAILED', 'SECONDS'];
  const rows = reports.map((r) => [
    r.node,
    r.error ? `failed: ${r.error.code}` : r.result,
    test ? r.counts.wouldChange : r.counts.changed,
    r.counts.unchanged,
    r.counts.failed,
    (r.durationMs / 1000).toFixed(2),
  ]);
  const details = reports.map(formatNodeDetails).filter((d) => d !== '');
  const s = summary.states;
  const line = `${summary.nodes} node(s): ${test ? `${s.wouldChange} state(s) would change` : `${s.changed} changed`}, ${s.unchanged} unchanged, ${s.failed} failed; ${summary.failedNodes} node(s) failed`;
  // Its own files (slurm.conf, gres.conf) were rendered from the hardware of before the run: convergence applies
  // such a node again by itself; an operator's apply says so.
  const again = reports.filter((r) => r.hardwareChangedDuringRun).map((r) => `${r.node}: its hardware changed during the run (a driver installed?): apply it again so its own files have it\n`);
  return `${table(head, rows)}\n${details.length > 0 ? `\n${details.join('\n\n')}\n` : ''}\n${again.join('')}${line}\n`;
}

export function registerState(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  const state = program.command('state').description('apply declared states to nodes over SSH, or predict what would change');
  for (const mode of ['apply', 'test'] as const) {
    state
      .command(`${mode} <targets...>`)
      .description(
        mode === 'apply'
          ? 'converge the target nodes to their states (exit 1 if any state failed)'
          : 'dry run: what apply would change, nothing is touched (exit 3 if anything would change, 1 if a state failed)',
      )
      .action(async (targets: string[], _o, cmd: Command) => {
        const { client, out } = ctx(cmd.optsWithGlobals());
        const reports: NodeRunReport[] = [];
        const progress = !out.json && process.stderr.isTTY;
        const summary = await client.postStream<StateRunSummary>('/states/run', { targets, mode }, (raw) => {
          const line = raw as StateRunLine;
          if (line.type === 'node') {
            reports.push(line.report);
            if (progress) process.stderr.write(`  ${line.report.node}: ${line.report.result}\n`);
          }
        });
        reports.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
        if (out.json) {
          printJson(out, {
            summary,
            nodes: Object.fromEntries(reports.map((r) => [r.node, r.error ? { error: r.error, runId: r.runId } : toSaltReturn(r.states)])),
            // Per node, what the Salt-shaped return above has no place for.
            runs: Object.fromEntries(
              reports.map((r) => [r.node, { runId: r.runId, result: r.result, ...(r.hardwareChanged ? { hardwareChanged: true } : {}), ...(r.hardwareChangedDuringRun ? { hardwareChangedDuringRun: true } : {}) }]),
            ),
          });
        } else {
          out.write(formatStateRun(reports, summary));
        }
        if (summary.failedNodes > 0 || summary.states.failed > 0) throw new CliExit(EXIT_FAILED);
        if (mode === 'test' && summary.states.wouldChange > 0) throw new CliExit(EXIT_DRIFT);
      });
  }
}
