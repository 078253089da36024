import { isMap, isScalar, isSeq, type Document, type LineCounter } from 'yaml';
import { RackseedError, type ErrorCode } from '../model/errors.js';

/** A path into the inventory as the operator reads it: ['nodes', 3, 'mac'] is nodes[3].mac. */
export type KeyPath = ReadonlyArray<PropertyKey>;

export function formatPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

/**
 * Maps key paths back to file:line, so every inventory error points at the line to fix. Errors are about
 * values the operator wrote, so the line is that of the deepest part of the path that exists in the file
 * (a missing key is reported at its parent).
 */
export class SourceLocator {
  constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  line(path: KeyPath): number | undefined {
    let node: unknown = this.doc.contents;
    let offset = isScalar(node) || isMap(node) || isSeq(node) ? node.range?.[0] : undefined;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        offset = isScalar(pair.key) ? pair.key.range?.[0] : offset;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (!(isScalar(item) || isMap(item) || isSeq(item))) break;
        offset = item.range?.[0] ?? offset;
        node = item;
      } else {
        break;
      }
    }
    return offset === undefined ? undefined : this.lines.linePos(offset).line;
  }

  /** "inventory.yaml:14 nodes[2].mac" */
  where(path: KeyPath): string {
    const line = this.line(path);
    const at = line === undefined ? this.file : `${this.file}:${line}`;
    return path.length === 0 ? at : `${at} ${formatPath(path)}`;
  }

  error(code: ErrorCode, path: KeyPath, why: string, details: Record<string, unknown> = {}): RackseedError {
    return new RackseedError(code, `${this.where(path)}: ${why}`, {
      file: this.file,
      line: this.line(path),
      path: formatPath(path),
      ...details,
    });
  }
}
