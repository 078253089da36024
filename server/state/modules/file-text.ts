import { unifiedDiff } from './diff.js';

/** Text if the bytes are valid UTF-8 without NUL; undefined for anything binary. */
export function asText(data: Buffer): string | undefined {
  if (data.includes(0)) return undefined;
  const text = data.toString('utf8');
  return Buffer.from(text, 'utf8').equals(data) ? text : undefined;
}

/** Salt's placeholder when a state hides its content (keys, tokens). */
export const HIDDEN_DIFF = '<show_changes=False>';

/** The `diff` change of a file: a unified diff, or a note for new and binary files, or the hidden placeholder. */
export function contentDiff(path: string, before: Buffer | undefined, after: Buffer, show: boolean): string {
  if (!show) return HIDDEN_DIFF;
  if (before === undefined) return 'New file';
  const oldText = asText(before);
  const newText = asText(after);
  if (oldText === undefined || newText === undefined) return 'Replace binary file';
  return unifiedDiff(oldText, newText, { fromFile: path, toFile: path });
}
