/**
 * Text that came from a node (a failure reason, a stage detail, command output) is shown on operators' terminals:
 * control characters in it could retitle the terminal, clear the screen or paint a fake "ready". Two remedies, for
 * where the text is kept and where it is printed.
 */

// C0 and C1 controls and DEL; tab and newline are kept by printableText, which is for multi-line output.
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex
const CONTROLS_BUT_LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** One line of node-supplied text to store: controls become spaces, at most `maxChars` code points, well-formed. */
export function oneLineFromNode(text: string, maxChars: number): string {
  const line = text.replace(CONTROLS, ' ').replace(LONE_SURROGATE, '\uFFFD');
  const chars = Array.from(line);
  return chars.length > maxChars ? chars.slice(0, maxChars).join('') : line;
}

/** Text for a terminal: every control but tab and newline shown as a visible \u escape instead of acted on. */
export function printableText(text: string): string {
  return text.replace(CONTROLS_BUT_LAYOUT, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Replaces lone UTF-16 surrogates, which no store can keep as text (PostgreSQL's jsonb refuses them), with U+FFFD. */
export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD');
}
