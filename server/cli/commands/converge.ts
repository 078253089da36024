import type { Command } from 'commander';
import type { ConvergeLine, ConvergeSummary } from '../../net/http/converge-routes.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { CliExit, EXIT_FAILED } from '../exit.js';
import { printJson, table } from '../output.js';
import { printableText } from '../../util/printable.js';

type Requested = Extract<ConvergeLine, { type: 'requested' }>;
type Finished = Extract<ConvergeLine, { type: 'node' }>;

/** The requests (and, with --wait, how each convergence ended), then one summary line. */
export function formatConverge(requested: readonly Requested[], finished: readonly Finished[], summary: ConvergeSummary): string {
  const ended = new Map(finished.map((f) => [f.node, f]));
  const rows = requested.map((r) => {
    const end = ended.get(r.node);
    const outcome = r.status === 'queued' || r.status === 'coalesced' ? (end ? end.state : r.status) : `refused (${r.status})`;
    const note = end?.reason ? `${end.stage ? `${end.stage}: ` : ''}${end.reason}` : r.message;
    return [r.node, outcome, note];
  });
  const waited = summary.ready !== undefined ? `; ${summary.ready} ready, ${summary.notReady?.length ?? 0} not` : '';
  return `${table(['NODE', 'CONVERGENCE', 'NOTE'], rows)}\n${summary.queued} of ${summary.nodes} node(s) converging${waited}${summary.refused.length > 0 ? `; refused: ${summary.refused.join(', ')}` : ''}\n`;
}

/** The line a terminal gets as a node's convergence ends (its reason comes from the node: made printable). */
export function convergeProgressLine(l: Finished): string {
  return printableText(`  ${l.node}: ${l.state ?? 'unknown'}${l.reason ? ` (${l.reason})` : ''}\n`);
}

export function registerConverge(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  program
    .command('converge <targets...>')
    .description("converge nodes now: apply their states, then check readiness, as after an install (the way back for a node whose states failed)")
    .option('--wait', 'wait until each convergence ends and show the lifecycle state it left (exit 1 unless all are ready)')
    .action(async (targets: string[], opts: { wait?: boolean }, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      const requested: Requested[] = [];
      const finished: Finished[] = [];
      // A convergence takes minutes: on a terminal each node is told as it ends, as state apply and audit do.
      const progress = !out.json && process.stderr.isTTY;
      const summary = await client.postStream<ConvergeSummary>('/converge', { targets, wait: opts.wait === true }, (line) => {
        const l = line as ConvergeLine;
        if (l.type === 'requested') requested.push(l);
        else if (l.type === 'node') {
          finished.push(l);
          if (progress) process.stderr.write(convergeProgressLine(l));
        }
      });
      if (out.json) printJson(out, { summary, requested, finished });
      else out.write(formatConverge(requested, finished, summary));
      if (summary.refused.length > 0 || (summary.notReady?.length ?? 0) > 0) throw new CliExit(EXIT_FAILED);
    });
}
