import type { ExecResult } from '../../state/types.js';
import type { Evidence } from '../types.js';

/** Small builders so every role states evidence the same way. */

export function passed(role: string, check: string, expected: string, seen: string, reason?: string): Evidence {
  return { check, role, expected, seen, pass: true, ...(reason !== undefined ? { reason } : {}) };
}

export function failed(role: string, check: string, expected: string, seen: string, reason: string): Evidence {
  return { check, role, expected, seen, pass: false, reason };
}

/** The first meaningful line of a failed command's output, for a reason an operator can read. */
export function firstLine(output: ExecResult): string {
  const text = `${output.stderr}\n${output.stdout}`.split('\n').map((l) => l.trim()).find((l) => l !== '');
  return (text ?? '').slice(0, 300);
}

/** Evidence for a collection command that did not run to its end. */
export function commandFailed(role: string, check: string, expected: string, what: string, output: ExecResult): Evidence {
  const why = firstLine(output);
  return failed(role, check, expected, `exit ${output.code}`, `${what} failed (exit ${output.code})${why ? `: ${why}` : ''}`);
}

/** A short list for a reason: the first `max` items and how many more. */
export function listSome(items: readonly string[], max = 5): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}
