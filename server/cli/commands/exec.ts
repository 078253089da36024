import type { Command } from 'commander';
import type { ExecLine, ExecSummary } from '../../net/http/exec-routes.js';
import type { ExecOutcome } from '../../services/remote-exec.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { CliExit, EXIT_FAILED, UsageError } from '../exit.js';
import { printJson } from '../output.js';
import { printableText } from '../../util/printable.js';
import { prefixedLines, renderGathered, summaryLine } from './exec-format.js';

/**
 * The words after `--` on the command line. Commander drops the `--` itself from the operands, so the command is
 * found in the raw arguments: everything after the first `--` that follows the verb.
 */
export function splitAtDashDash(operands: readonly string[], rawArgs: readonly string[]): { targets: string[]; command: string[] } | undefined {
  const verb = rawArgs.indexOf('exec');
  const dash = rawArgs.indexOf('--', verb + 1);
  if (verb < 0 || dash < 0) return undefined;
  const commandWords = rawArgs.length - dash - 1;
  return { targets: operands.slice(0, operands.length - commandWords), command: operands.slice(operands.length - commandWords) };
}

export function registerExec(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  program
    .command('exec <targets-then-command...>')
    .usage('TARGET... [--timeout S] [--prefix] -- COMMAND...')
    .description("run a shell command as root on every targeted node at once (pdsh/clush), over the states' SSH with pinned host keys; identical answers are printed once under their hostlist")
    .option('--timeout <seconds>', 'per node: then the command is killed (its process group) and the node reported as timed out', '60')
    .option('--prefix', 'print every line as "node: line" as each node finishes, instead of gathering identical answers')
    .addHelpText(
      'after',
      "\nThe command goes after --, and is joined with spaces and run by sh -c on the node (/bin/sh, dash on Debian),\nwhatever root's login shell is (unlike ssh: bash-only syntax such as {1..3} needs bash -c '...'):\n  rackseed exec group:gpu -- nvidia-smi -L\n  rackseed exec 'gpu[01-04]' -- 'dmesg | tail -n 3'\nCtrl-C stops it: no further node starts, and the commands running are killed.\nExit status: 0 when every node ran the command and it exited 0, else 1.",
    )
    .action(async (operands: string[], o: { timeout: string; prefix?: boolean }, cmd: Command) => {
      const split = splitAtDashDash(operands, (cmd.parent as Command & { rawArgs: string[] }).rawArgs);
      if (!split || split.command.length === 0) throw new UsageError('put the command after --: rackseed exec TARGET... -- COMMAND (e.g. rackseed exec group:gpu -- nvidia-smi -L)');
      if (split.targets.length === 0) throw new UsageError('name the nodes before --: node names, hostlists (gpu[01-04]), group:NAME, role:NAME or key=value');
      const timeoutSeconds = Number(o.timeout);
      if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) throw new UsageError('--timeout takes a whole number of seconds (at least 1)');
      const { client, out } = ctx(cmd.optsWithGlobals());
      const outcomes: ExecOutcome[] = [];
      // Node output on standard error is shown like the rest (controls as visible escapes).
      const writeErr = (text: string) => process.stderr.write(printableText(text));
      // --prefix prints each answer as it comes and needs none of them kept.
      const keep = out.json || !o.prefix;
      let order = new Map<string, number>();
      const summary = await client.postStream<ExecSummary>('/exec', { targets: split.targets, command: split.command.join(' '), timeoutSeconds }, (raw) => {
        const line = raw as ExecLine;
        if (line.type === 'start') order = new Map(line.nodes.map((n, i) => [n, i]));
        if (line.type !== 'node') return;
        if (keep) outcomes.push(line.outcome);
        if (o.prefix && !out.json) {
          const lines = prefixedLines(line.outcome);
          out.write(lines.stdout);
          writeErr(lines.stderr);
        }
      });
      // The answers arrive as nodes finish; printed in the order the targets named them.
      outcomes.sort((a, b) => (order.get(a.node) ?? 0) - (order.get(b.node) ?? 0));
      if (out.json) printJson(out, { summary, nodes: outcomes });
      else if (o.prefix) writeErr(summaryLine(summary));
      else out.write(`${renderGathered(outcomes)}${summaryLine(summary)}`);
      if (summary.exitNonZero > 0 || summary.unfinished > 0) throw new CliExit(EXIT_FAILED);
    });
}
