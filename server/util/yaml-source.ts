import { LineCounter, isMap, isNode, isPair, isScalar, parseDocument, type Document, type Node as YamlNode } from 'yaml';

/**
 * A parsed YAML document that remembers where every value came from, so validation errors can name the line.
 * Pure: takes text, never reads files.
 */
export interface YamlSource {
  file: string;
  doc: Document;
  value: unknown;
  /** 1-based line of the value at `path`, or of its nearest existing parent. */
  lineOf(path: ReadonlyArray<string | number>): number | undefined;
}

export type YamlParseResult =
  | { ok: true; source: YamlSource }
  | { ok: false; file: string; line?: number; message: string };

export function parseYamlSource(text: string, file: string): YamlParseResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const line = first.linePos?.[0]?.line ?? lineCounter.linePos(first.pos[0]).line;
    return { ok: false, file, line, message: first.message.split('\n')[0] ?? first.message };
  }
  const lineOf = (path: ReadonlyArray<string | number>): number | undefined => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = nodeAt(doc, path.slice(0, depth));
      if (node?.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  return { ok: true, source: { file, doc, value: doc.toJS({ maxAliasCount: 100 }), lineOf } };
}

/** For a key path, the key node when the last step is a map key (so "unknown key" errors point at the key). */
function nodeAt(doc: Document, path: ReadonlyArray<string | number>): YamlNode | undefined {
  if (path.length === 0) return isNode(doc.contents) ? doc.contents : undefined;
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  const last = path[path.length - 1];
  if (isMap(parent)) {
    const pair = parent.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(last));
    if (pair && isNode(pair.value)) return pair.value;
    if (pair && isNode(pair.key)) return pair.key;
    return undefined;
  }
  const node = doc.getIn(path, true);
  return isNode(node) ? node : undefined;
}

/** `nodes[3].mac` from ['nodes', 3, 'mac']. */
export function formatKeyPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const step of path) {
    if (typeof step === 'number') out += `[${step}]`;
    else out += out ? `.${String(step)}` : String(step);
  }
  return out || '(top level)';
}
