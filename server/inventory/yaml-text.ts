import { Document, isMap, isScalar, isSeq, type LineCounter, type YAMLMap } from 'yaml';

/**
 * Text splices computed from a parsed Document. Inventory edits go through these instead of re-printing the
 * whole Document, because the file lives in git: an added node must be a few added lines in the diff, not
 * a reformatting of every hand-aligned comment and flow list in the file.
 */
export class TextEdits {
  private readonly edits: Array<{ start: number; end: number; text: string; order: number }> = [];

  replace(start: number, end: number, text: string): void {
    this.edits.push({ start, end, text, order: this.edits.length });
  }

  insert(at: number, text: string): void {
    this.replace(at, at, text);
  }

  apply(source: string): string {
    // Back to front so earlier offsets stay valid; inserts at one offset keep the order they were made in.
    const sorted = [...this.edits].sort((a, b) => b.start - a.start || b.order - a.order);
    // New lines end the way the file's lines do: a CRLF file (written on Windows) must not get a mix of both.
    const eol = source.includes('\r\n') ? '\r\n' : '\n';
    let out = source;
    for (const e of sorted) out = out.slice(0, e.start) + e.text.replace(/\r?\n/g, eol) + out.slice(e.end);
    return out;
  }
}

/** A value as one line of flow YAML: 10.0.0.1, [ a, b ], { address: 10.1.0.1 }; quoted where YAML needs it. */
export function flowText(value: unknown): string {
  const doc = new Document(value);
  if (isMap(doc.contents) || isSeq(doc.contents)) doc.contents.flow = true;
  return doc.toString({ lineWidth: 0 }).trimEnd();
}

/** A new block sequence item ("- name: x\n  mac: y\n"), nested maps in flow style, indented to `indent`. */
export function blockItemText(item: Record<string, unknown>, indent: number): string {
  const doc = new Document([item]);
  const seq = doc.contents;
  const map = isSeq(seq) ? seq.items[0] : undefined;
  if (isMap(map)) {
    for (const pair of map.items) {
      if (isMap(pair.value) || isSeq(pair.value)) pair.value.flow = true;
    }
  }
  return indentLines(doc.toString({ lineWidth: 0 }), indent);
}

function indentLines(text: string, indent: number): string {
  const pad = ' '.repeat(indent);
  return text
    .split('\n')
    .map((l) => (l === '' ? l : pad + l))
    .join('\n');
}

/** Offset just past the line that contains `offset - 1`, so an insertion there starts a new line. */
export function lineEndAfter(text: string, offset: number): { at: number; needsNewline: boolean } {
  if (offset > 0 && text[offset - 1] === '\n') return { at: offset, needsNewline: false };
  const nl = text.indexOf('\n', offset);
  return nl === -1 ? { at: text.length, needsNewline: true } : { at: nl + 1, needsNewline: false };
}

export function columnOf(lines: LineCounter, offset: number): number {
  return lines.linePos(offset).col - 1;
}

/**
 * Sets `key` in a block map by splicing: the value of an existing pair (or the pair itself, renamed, when
 * `replaceKey` names it: mac -> macs) is rewritten in place, a missing pair becomes a new last line.
 */
export function setInBlockMap(
  edits: TextEdits,
  text: string,
  lines: LineCounter,
  map: YAMLMap,
  key: string,
  value: unknown,
  replaceKey: string = key,
): void {
  const pair = map.items.find((p) => isScalar(p.key) && p.key.value === replaceKey);
  const keyNode = pair && isScalar(pair.key) ? pair.key : undefined;
  const valueRange = pair && (isScalar(pair.value) || isMap(pair.value) || isSeq(pair.value)) ? pair.value.range : undefined;
  if (keyNode?.range && valueRange) {
    const end = valueRange[1];
    const newline = text[end - 1] === '\n' ? '\n' : '';
    const start = replaceKey === key ? keyNode.range[1] : keyNode.range[0];
    const head = replaceKey === key ? '' : key;
    edits.replace(start, end, `${head}: ${flowText(value)}${newline}`);
    return;
  }
  const mapRange = map.range;
  if (!mapRange) throw new Error('map without source range');
  const { at, needsNewline } = lineEndAfter(text, mapRange[1]);
  const pad = ' '.repeat(columnOf(lines, mapRange[0]));
  edits.insert(at, `${needsNewline ? '\n' : ''}${pad}${key}: ${flowText(value)}\n`);
}

/** Inserts `, entry` before the closing bracket of a flow collection, keeping the file's own style. */
export function appendToFlow(edits: TextEdits, text: string, range: readonly number[], close: ']' | '}', entry: string, empty: boolean): void {
  let at = text.lastIndexOf(close, (range[1] ?? 0) - 1);
  while (at > 0 && /\s/.test(text[at - 1] ?? '')) at--;
  // A trailing comma (`{ a: 1, }`, valid YAML) already separates: another would make `,,`.
  const separated = text[at - 1] === ',';
  edits.insert(at, empty ? entry : separated ? ` ${entry}` : `, ${entry}`);
}
