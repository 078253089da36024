import { compressHostlist } from '../../inventory/hostlist.js';
import type { ExecSummary } from '../../net/http/exec-routes.js';
import type { ExecOutcome } from '../../services/remote-exec.js';
import { printableText } from '../../util/printable.js';

/**
 * How `rackseed exec` prints what the nodes answered. Pure: tested with tables.
 *
 * Gathered (the default, as `clush -b` or `pdsh | dshbak -c`): nodes that answered exactly alike (same exit status,
 * same stdout, same stderr) are printed once under their hostlist, so 1,000 identical answers are one block and the
 * odd node out stands out. Prefixed (`--prefix`, as pdsh): every line as `node: line`, as each node finishes.
 */

export interface AnswerGroup {
  /** In the order of their first node in the answers. */
  nodes: string[];
  header: string;
  body: string;
}

function status(o: ExecOutcome): string {
  // It ran, and was killed: "not run" would send the operator looking for a connection problem.
  if (o.timedOut) return `TIMED OUT (${o.error ?? 'killed'})`;
  if (!o.ran) return `NOT RUN: ${o.error ?? 'unknown error'}`;
  return o.code === 0 ? '' : `exit ${o.code}`;
}

function withNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}

export function gatherAnswers(outcomes: readonly ExecOutcome[]): AnswerGroup[] {
  const groups = new Map<string, { nodes: string[]; sample: ExecOutcome }>();
  for (const o of outcomes) {
    const key = JSON.stringify([o.ran, o.code ?? null, o.error ?? null, o.stdout, o.stderr, o.truncated === true]);
    const g = groups.get(key);
    if (g) g.nodes.push(o.node);
    else groups.set(key, { nodes: [o.node], sample: o });
  }
  return [...groups.values()].map(({ nodes, sample }) => {
    const state = status(sample);
    const header = `---- ${compressHostlist(nodes)} (${nodes.length})${state ? `: ${state}` : ''} ----`;
    const stderr = sample.stderr === '' ? '' : `-- stderr --\n${withNewline(sample.stderr)}`;
    const cut = sample.truncated ? `-- output cut at 64 KiB per stream --\n` : '';
    return { nodes, header, body: `${withNewline(sample.stdout)}${stderr}${cut}` };
  });
}

export function renderGathered(outcomes: readonly ExecOutcome[]): string {
  return gatherAnswers(outcomes)
    .map((g) => `${g.header}\n${g.body}`)
    .join('');
}

/**
 * One node's answer as `node: line` lines: stdout's for standard output, the rest for standard error. Ready for the
 * terminal: what the node printed may hold escape sequences (retitle the terminal, clear it, fake another node's
 * line), shown as visible escapes by printableText, as all CLI output is.
 */
export function prefixedLines(o: ExecOutcome): { stdout: string; stderr: string } {
  const prefix = (text: string) => (text === '' ? '' : withNewline(text).slice(0, -1).split('\n').map((line) => `${o.node}: ${line}\n`).join(''));
  const state = status(o);
  const stderr = `${prefix(o.stderr)}${state ? `${o.node}: [${state}]${o.truncated ? ' [output cut at 64 KiB]' : ''}\n` : o.truncated ? `${o.node}: [output cut at 64 KiB]\n` : ''}`;
  return { stdout: printableText(prefix(o.stdout)), stderr: printableText(stderr) };
}

export function summaryLine(s: ExecSummary): string {
  return `${s.nodes} node${s.nodes === 1 ? '' : 's'}: ${s.succeeded} exit 0, ${s.exitNonZero} exit non-zero, ${s.unfinished} did not run or finish\n`;
}
