import { isMap, isScalar, isSeq, type Document, type Node } from 'yaml';
import type { KeyPath, SourceLocator } from '../util/source-locator.js';

/** The only inventory keys whose values are numbers; everything else the operator writes is text. */
const NUMERIC_KEYS = new Set(['slot', 'lease_seconds', 'count', 'memory_mib', 'ports', 'rate_gbps']);

/**
 * YAML turns plain scalars that look like numbers into numbers, which silently corrupts text fields:
 * the MAC 001122334455 would lose its leading zeros and `rack: 07` would become 7. Before converting the
 * document, put the source text back into every scalar that is not in a numeric field. Free-form `data`
 * is left as the operator typed it.
 */
export function restoreTextScalars(doc: Document, where: SourceLocator): void {
  visit(doc.contents, [], false, where);
}

/**
 * Version pins inside free-form data that the built-in states and readiness read as text. Unquoted, YAML reads
 * `440.100` as the number 440.1 and `12.10` as 12.1, so the pin would name a driver or toolkit that does not exist.
 */
const VERSION_PINS: ReadonlyArray<readonly [string, string]> = [
  ['nvidia', 'driver'],
  ['nvidia', 'cuda'],
];

function visit(node: unknown, path: KeyPath, inFlowSeq: boolean, where: SourceLocator): void {
  if (isFreeForm(path)) {
    refuseNumericVersionPins(node, path, where);
    return;
  }
  if (isMap(node)) {
    for (const pair of node.items) {
      if (isScalar(pair.key)) visit(pair.value, [...path, String(pair.key.value)], false, where);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => visit(item, [...path, i], node.flow === true, where));
  } else if (isScalar(node)) {
    restore(node as Node & { value: unknown; source?: string }, path, inFlowSeq, where);
  }
}

function isFreeForm(path: KeyPath): boolean {
  const [top, , third] = path;
  if (top === 'groups') return path.length === 3 && third === 'data';
  return top === 'nodes' && path.length === 4 && third === 'overrides' && path[3] === 'data';
}

function restore(node: { value: unknown; source?: string }, path: KeyPath, inFlowSeq: boolean, where: SourceLocator): void {
  if (typeof node.value !== 'number' && typeof node.value !== 'boolean') return;
  const key = path[path.length - 1];
  const parent = path[path.length - 2];
  // Labels and selectors are text maps whatever their keys are called (`slot: 5` as a label is "5").
  const textMap = parent === 'labels' || parent === 'selector';
  if (typeof key === 'string' && NUMERIC_KEYS.has(key) && !textMap) return;
  const text = node.source ?? String(node.value);
  // [console=ttyS0,115200] is two list items in YAML, and the kernel would silently get no serial speed.
  if (parent === 'kernel_args' && inFlowSeq && typeof node.value === 'number') {
    throw where.error(
      'INVENTORY_INVALID',
      path,
      `kernel argument ${text} is a bare number: in a [ ] list a comma separates items, so "console=ttyS0,115200" ` +
        `must be quoted: ["console=ttyS0,115200"] (quote the number too if it really is a separate argument)`,
    );
  }
  node.value = text;
}

function refuseNumericVersionPins(data: unknown, path: KeyPath, where: SourceLocator): void {
  if (!isMap(data)) return;
  for (const [section, key] of VERSION_PINS) {
    const inner = data.get(section, true);
    if (!isMap(inner)) continue;
    const value = inner.get(key, true) as (Node & { value: unknown; source?: string }) | undefined;
    if (!isScalar(value) || typeof value.value !== 'number') continue;
    const text = value.source ?? String(value.value);
    throw where.error(
      'INVENTORY_INVALID',
      [...path, section, key],
      `${section}.${key} must be a quoted version: YAML reads ${text} as the number ${String(value.value)}, ` +
        `which names another version (440.100 would pin 440.1); write '${text}'`,
    );
  }
}
