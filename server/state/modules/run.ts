import { RackseedError } from '../../model/errors.js';
import type { ExecResult, ModuleContext } from '../types.js';
import { parseSections, sectionScript, type Section } from './shell.js';

/** Runs one command on the node with the run's per-command timeout (or a state's own, e.g. cmd.run `timeout`). */
export function run(ctx: ModuleContext, command: string, timeoutMs?: number): Promise<ExecResult> {
  return ctx.transport.exec(command, { timeoutMs: timeoutMs ?? ctx.timeoutMs });
}

const MAX_MESSAGE = 2000;

/** The useful part of a failed command for a comment: its stderr, else its stdout, bounded. */
export function failureText(result: ExecResult): string {
  const text = (result.stderr.trim() || result.stdout.trim()).replace(/\s*\n\s*/g, ' | ');
  const bounded = text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}...` : text;
  return `exit ${result.code}${bounded ? `: ${bounded}` : ''}`;
}

/** A failure the module cannot turn into a check outcome (a probe that should never fail did). */
export function moduleFailure(what: string, result: ExecResult): RackseedError {
  return new RackseedError('STATE_MODULE_FAILED', `${what} failed (${failureText(result)})`, { code: result.code });
}

/** Runs read-only probes in one round trip and returns each probe's output and status. */
export async function probe(ctx: ModuleContext, parts: ReadonlyArray<readonly [string, string]>): Promise<Map<string, Section>> {
  const result = await run(ctx, sectionScript(parts));
  const sections = parseSections(result.stdout);
  const missing = parts.map(([name]) => name).filter((name) => !sections.has(name));
  if (missing.length > 0) {
    throw new RackseedError('STATE_MODULE_FAILED', `probe gave no answer for ${missing.join(', ')} (${failureText(result)})`, { missing });
  }
  return sections;
}

export function section(sections: Map<string, Section>, name: string): Section {
  return sections.get(name) ?? { out: '', code: 1 };
}
