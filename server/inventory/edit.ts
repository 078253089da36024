import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type YAMLMap } from 'yaml';
import { RackseedError } from '../model/errors.js';
import { isValidHostname } from '../model/hostname.js';
import { normalizeMac, parseMac, type Mac } from '../model/mac.js';
import type { BmcBootMode, BmcKind } from '../model/inventory.js';
import { describeEntry, type CsvReader } from './entries.js';
import { parseNodeCsv, type NodeCsvRow } from './node-csv.js';
import { noCsvReader, parseInventory, parseInventoryDetailed } from './parse.js';
import { appendToFlow, blockItemText, columnOf, flowText, lineEndAfter, setInBlockMap, TextEdits } from './yaml-text.js';

/** A node to add by API or CLI. */
export interface NewNodeEntry {
  name: string;
  macs: string[];
  ip?: string;
  group?: string;
  bmc?: { address: string; kind?: BmcKind; bootMode?: BmcBootMode };
  rack?: string;
  slot?: number;
  labels?: Record<string, string>;
}

interface Parsed {
  doc: Document;
  lines: LineCounter;
}

function parseForEdit(text: string): Parsed {
  const lines = new LineCounter();
  return { doc: parseDocument(text, { lineCounter: lines, keepSourceTokens: true }), lines };
}

/** Key order follows the documented format, so added entries read like hand-written ones. */
function entryObject(e: NewNodeEntry, macs: Mac[]): Record<string, unknown> {
  const bmc = e.bmc
    ? { address: e.bmc.address, ...(e.bmc.kind && e.bmc.kind !== 'ipmi' ? { kind: e.bmc.kind } : {}), ...(e.bmc.bootMode ? { boot_mode: e.bmc.bootMode } : {}) }
    : undefined;
  return {
    name: e.name,
    ...(macs.length === 1 ? { mac: macs[0] } : { macs }),
    ...(e.ip !== undefined ? { ip: e.ip } : {}),
    ...(e.group !== undefined ? { group: e.group } : {}),
    ...(bmc ? { bmc } : {}),
    ...(e.labels && Object.keys(e.labels).length > 0 ? { labels: e.labels } : {}),
    ...(e.rack !== undefined ? { rack: e.rack } : {}),
    ...(e.slot !== undefined ? { slot: e.slot } : {}),
  };
}

/** Appends entries to nodes:, whatever shape it has now: a block list, a flow list, empty, or absent. */
function appendNodes(edits: TextEdits, text: string, { doc, lines }: Parsed, items: Array<Record<string, unknown>>): void {
  if (items.length === 0) return;
  const top = doc.contents;
  if (!isMap(top) || !top.range) throw new RackseedError('INVENTORY_INVALID', 'the inventory is not a YAML map');
  const pair = top.items.find((p) => isScalar(p.key) && p.key.value === 'nodes');
  const seq = pair?.value;
  if (isSeq(seq) && !seq.flow && seq.range) {
    const last = seq.items[seq.items.length - 1];
    const lastEnd = last && (isMap(last) || isSeq(last) || isScalar(last)) && last.range ? last.range[1] : seq.range[1];
    const { at, needsNewline } = lineEndAfter(text, lastEnd);
    const indent = columnOf(lines, seq.range[0]);
    edits.insert(at, (needsNewline ? '\n' : '') + items.map((i) => blockItemText(i, indent)).join(''));
    return;
  }
  if (isSeq(seq) && seq.flow && seq.range) {
    appendToFlow(edits, text, seq.range, ']', items.map(flowText).join(', '), seq.items.length === 0);
    return;
  }
  const keyIndent = columnOf(lines, top.range[0]);
  const block = items.map((i) => blockItemText(i, keyIndent + 2)).join('');
  if (pair && isScalar(pair.key) && pair.key.range) {
    // `nodes:` with nothing under it (or `~`): the list goes on the following lines, and a comment on that line stays.
    const { at } = lineEndAfter(text, pair.key.range[1]);
    const comment = /^:[ \t]*?(?:~|null|Null|NULL)?([ \t]+#[^\r\n]*)?\r?\n?$/.exec(text.slice(pair.key.range[1], at))?.[1] ?? '';
    edits.replace(pair.key.range[1], at, `:${comment}\n${block}`);
    return;
  }
  const { at, needsNewline } = lineEndAfter(text, top.range[1]);
  edits.insert(at, `${needsNewline ? '\n' : ''}${' '.repeat(keyIndent)}nodes:\n${block}`);
}

function checkedMacs(name: string, macs: readonly string[], where: string): Mac[] {
  if (macs.length === 0) throw new RackseedError('INVENTORY_INVALID', `${where}: node ${name} needs at least one MAC address`);
  return macs.map((m, i) => normalizeMac(m, `${where} macs[${i}]`));
}

/** Where a node appended by an edit came from, for errors: its CSV row, or the node being added. */
interface NewEntryOrigin {
  where: string;
  name: string;
}

/**
 * Validates an edited inventory text. Its errors locate entries by lines of the edited text, which the operator
 * never saw: an appended entry (index `firstNew` on) is named by where it came from instead (`a.csv:3 (n2)`).
 */
function validateEdited(out: string, file: string, readCsv: CsvReader, firstNew: number, origins: readonly NewEntryOrigin[]): void {
  try {
    parseInventory(out, file, readCsv);
  } catch (e) {
    if (!(e instanceof RackseedError)) throw e;
    let renamed = false;
    const message = e.message.replace(/\S+:\d+ nodes\[(\d+)\](\.[\w.[\]-]+)?( \([^)]*\))?/g, (whole, index: string, path: string | undefined) => {
      const origin = origins[Number(index) - firstNew];
      if (!origin) return whole;
      renamed = true;
      return `${origin.where} (${origin.name})${path ? ` ${path.slice(1)}` : ''}`;
    });
    if (!renamed) throw e;
    throw new RackseedError(e.code, message, e.details, { cause: e });
  }
}

const entryCount = (parsed: Parsed): number => {
  const seq = parsed.doc.get('nodes', true);
  return isSeq(seq) ? seq.items.length : 0;
};

/**
 * Adds one node to the inventory text and returns the new text, with every comment and all formatting of
 * the rest of the file untouched. The result is validated as a whole before it is returned, so a duplicate
 * name, MAC or IP is reported with both entries named and nothing is written.
 */
export function addNodeToText(text: string, file: string, entry: NewNodeEntry, readCsv: CsvReader = noCsvReader): string {
  parseInventory(text, file, readCsv);
  const where = `new node ${entry.name}`;
  if (!isValidHostname(entry.name)) {
    throw new RackseedError('HOSTNAME_INVALID', `${where}: "${entry.name}" is not a valid host name (RFC 1123: letters, digits and inner hyphens, at most 63 characters)`, { value: entry.name });
  }
  const macs = checkedMacs(entry.name, entry.macs, where);
  const edits = new TextEdits();
  const parsed = parseForEdit(text);
  appendNodes(edits, text, parsed, [entryObject(entry, macs)]);
  const out = edits.apply(text);
  validateEdited(out, file, readCsv, entryCount(parsed), [{ where: 'the new entry', name: entry.name }]);
  return out;
}

function rowEntry(row: NodeCsvRow): NewNodeEntry {
  return {
    name: row.name,
    macs: row.macs,
    ...(row.ip !== undefined ? { ip: row.ip } : {}),
    ...(row.group !== undefined ? { group: row.group } : {}),
    ...(row.bmc !== undefined ? { bmc: { address: row.bmc } } : {}),
    ...(row.rack !== undefined ? { rack: row.rack } : {}),
    ...(row.slot !== undefined ? { slot: row.slot } : {}),
  };
}

/** A scalar as the file spells it (YAML reads `rack: 07` as 7 and a MAC of digits as a number); undefined otherwise. */
function typedText(node: unknown): string | undefined {
  return isScalar(node) ? (node.source ?? String(node.value)) : undefined;
}

/** The entry's MACs in canonical form, read from the source text (YAML may have read 001122334455 as a number). */
function macsOf(map: YAMLMap): Array<Mac | undefined> {
  const list = map.get('macs', true);
  const nodes = isSeq(list) ? list.items : map.has('mac') ? [map.get('mac', true)] : [];
  return nodes.map((n) => parseMac(typedText(n) ?? ''));
}

/** Splices the row's values into an existing entry; returns whether anything changed. */
function updateEntry(edits: TextEdits, text: string, lines: LineCounter, map: YAMLMap, row: NodeCsvRow): boolean {
  const current = map.toJSON() as Record<string, unknown>;
  let changed = false;
  // A text value compares with what the file says, as typed: the row's "07" is the file's `rack: 07`.
  const same = (key: string, value: unknown): boolean => {
    const typed = typeof value === 'string' ? typedText(map.get(key, true)) : undefined;
    return typed !== undefined ? typed === value : JSON.stringify(current[key]) === JSON.stringify(value);
  };
  const set = (key: string, value: unknown, replaceKey = key) => {
    if (key === replaceKey && same(key, value)) return;
    changed = true;
    if (map.flow && !(replaceKey in current)) {
      appendToFlow(edits, text, map.range ?? [], '}', `${key}: ${flowText(value)}`, map.items.length === 0);
    } else {
      setInBlockMap(edits, text, lines, map, key, value, replaceKey);
    }
  };
  if (JSON.stringify(macsOf(map)) !== JSON.stringify(row.macs)) {
    if ('macs' in current) set('macs', row.macs);
    else if (row.macs.length === 1) set('mac', row.macs[0]);
    else set('macs', row.macs, 'mac');
  }
  if (row.ip !== undefined) set('ip', row.ip);
  if (row.bmc !== undefined) {
    const bmc = map.get('bmc', true);
    if (isMap(bmc)) {
      if (typedText(bmc.get('address', true)) !== row.bmc) {
        changed = true;
        setInBlockMap(edits, text, lines, bmc, 'address', row.bmc);
      }
    } else {
      set('bmc', { address: row.bmc });
    }
  }
  if (row.group !== undefined) set('group', row.group);
  if (row.rack !== undefined) set('rack', row.rack);
  if (row.slot !== undefined) set('slot', row.slot);
  return changed;
}

/**
 * Applies a delivery sheet (name,mac[,ip,bmc,rack,slot,group]) to the inventory text: explicit entries with a
 * row's name get its values, unknown names become new entries. A name that exists only as a member of a
 * range is refused: giving it an explicit entry too would shadow the range, and the range's own csv: file
 * is where its MACs belong. The result is validated before it is returned.
 */
export function importCsvToText(
  text: string,
  file: string,
  csvText: string,
  csvFile: string,
  readCsv: CsvReader = noCsvReader,
): { text: string; added: string[]; updated: string[]; unchanged: string[] } {
  const { entries } = parseInventoryDetailed(text, file, readCsv);
  const rows = parseNodeCsv(csvText, csvFile);
  const parsed = parseForEdit(text);
  const seq = parsed.doc.get('nodes', true);
  const explicit = new Map<string, number>();
  const ranged = new Map<string, (typeof entries)[number]>();
  for (const e of entries) {
    if (e.spec.origin.range !== undefined) ranged.set(e.spec.name.toLowerCase(), e);
    else explicit.set(e.spec.name.toLowerCase(), e.index);
  }

  const edits = new TextEdits();
  const added: string[] = [];
  const updated: string[] = [];
  /** Rows that match their entry already: counted, so added + updated + unchanged is every row of the sheet. */
  const unchanged: string[] = [];
  const newEntries: Array<Record<string, unknown>> = [];
  const newOrigins: NewEntryOrigin[] = [];
  for (const row of rows) {
    const key = row.name.toLowerCase();
    const inRange = ranged.get(key);
    if (inRange) {
      throw new RackseedError(
        'INVENTORY_INVALID',
        `${row.file}:${row.line}: ${row.name} is declared by ${describeEntry(inRange)}; ` +
          `put its MAC in that range's csv: file instead of giving it an entry of its own`,
        { file: row.file, line: row.line, node: row.name },
      );
    }
    const index = explicit.get(key);
    const map = index !== undefined && isSeq(seq) ? seq.items[index] : undefined;
    if (isMap(map)) {
      if (updateEntry(edits, text, parsed.lines, map, row)) updated.push(row.name);
      else unchanged.push(row.name);
    } else {
      newEntries.push(entryObject(rowEntry(row), row.macs));
      newOrigins.push({ where: `${row.file}:${row.line}`, name: row.name });
      added.push(row.name);
    }
  }
  appendNodes(edits, text, parsed, newEntries);
  const out = edits.apply(text);
  validateEdited(out, file, readCsv, entryCount(parsed), newOrigins);
  return { text: out, added, updated, unchanged };
}

/** What moving nodes into another group did to the inventory text: the new text, and each moved node's old group. */
export interface GroupMove {
  text: string;
  /** Nodes whose group changed, with the group they had (already-there nodes are left out). */
  moved: Array<{ node: string; from: string }>;
}

/**
 * Sets `group:` on the explicit entries of `names` (adding the key to an entry placed by label selection), keeping
 * the file's comments and layout. A node declared by a range entry is refused, naming the entry: changing the
 * range's group would move its other members too, and its csv: file's group column is where one member's group
 * belongs. The result is validated (the group must exist) before it is returned.
 */
export function moveNodesToGroupInText(text: string, file: string, names: readonly string[], group: string, readCsv: CsvReader = noCsvReader): GroupMove {
  const { inventory, entries } = parseInventoryDetailed(text, file, readCsv);
  if (!inventory.groups.has(group)) {
    throw new RackseedError('GROUP_NOT_FOUND', `no group "${group}" in ${file} (groups: ${[...inventory.groups.keys()].join(', ') || 'none'})`, { group });
  }
  const byName = new Map(entries.map((e) => [e.spec.name.toLowerCase(), e]));
  const parsed = parseForEdit(text);
  const seq = parsed.doc.get('nodes', true);
  const edits = new TextEdits();
  const moved: GroupMove['moved'] = [];
  for (const name of names) {
    const entry = byName.get(name.toLowerCase());
    const from = inventory.nodes.get(name)?.group;
    if (!entry || from === undefined) throw new RackseedError('NODE_NOT_FOUND', `no node "${name}" in ${file}`, { node: name });
    if (from === group) continue;
    if (entry.spec.origin.range !== undefined) {
      throw new RackseedError(
        'INVENTORY_INVALID',
        `${name} is declared by ${describeEntry(entry)}; give it a group column in that range's csv: file, or an entry of its own, to move it alone`,
        { node: name },
      );
    }
    const map = isSeq(seq) ? seq.items[entry.index] : undefined;
    if (!isMap(map)) throw new RackseedError('INVENTORY_INVALID', `${describeEntry(entry)} is not a map entry`, { node: name });
    if (map.flow && !map.has('group')) appendToFlow(edits, text, map.range ?? [], '}', `group: ${flowText(group)}`, map.items.length === 0);
    else setInBlockMap(edits, text, parsed.lines, map, 'group', group);
    moved.push({ node: name, from });
  }
  const out = edits.apply(text);
  const after = parseInventory(out, file, readCsv);
  // A selector can outrank an explicit group only if the edit went wrong; check what the file now says.
  for (const m of moved) {
    if (after.nodes.get(m.node)?.group !== group) throw new RackseedError('INTERNAL', `moving ${m.node} to ${group} did not take effect in ${file}`);
  }
  return { text: out, moved };
}

/** What removing nodes did to the inventory text: the new text, and each removed node with the entry it was in. */
export interface NodeRemoval {
  text: string;
  /** In the order asked for; `entry` is where the node was declared (describeEntry), as the file was before. */
  removed: Array<{ node: string; entry: string }>;
}

/** Start of the line that holds `offset`. */
function lineStart(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

/**
 * Deletes block sequence items whole: from their `- ` to the end of their last line, and the comment lines after it
 * indented as its keys are. Comment lines above an item stay: they may head a section that other entries are in.
 */
function deleteBlockItems(edits: TextEdits, text: string, items: ReadonlyArray<{ range: readonly number[]; where: string }>): void {
  for (const { range, where } of items) {
    const start = lineStart(text, range[0] ?? 0);
    if (!/^[ \t]*-[ \t]+$/.test(text.slice(start, range[0]))) {
      throw new RackseedError('INVENTORY_INVALID', `${where} does not start its own line; remove it by hand`);
    }
    edits.replace(start, endWithOwnComments(text, lineEndAfter(text, range[1] ?? 0).at, text.indexOf('-', start) - start), '');
  }
}

/**
 * Past an item's last value, the comment lines indented deeper than its `- ` are still the item's (`    # spare
 * BMC, swap in Q3`): they go with it. A blank line, a comment at the list's own level or anything else ends it.
 */
function endWithOwnComments(text: string, end: number, dashColumn: number): number {
  let at = end;
  for (;;) {
    const nl = text.indexOf('\n', at);
    const line = text.slice(at, nl === -1 ? text.length : nl + 1);
    const comment = /^([ \t]*)#/.exec(line);
    if (line === '' || !comment || comment[1]!.length <= dashColumn) return at;
    at += line.length;
  }
}

/**
 * Deletes items of a flow sequence (`nodes: [ {...}, {...} ]`) with their separating commas. An item followed by a
 * kept one goes up to the next item; the removed items after the last kept one go as one span from that kept item's
 * end, so no two deletions overlap and no `,,` or leading comma is left.
 */
function deleteFlowItems(edits: TextEdits, all: ReadonlyArray<readonly number[]>, removed: ReadonlySet<number>, open: number, close: number): void {
  const kept = all.map((_, i) => i).filter((i) => !removed.has(i));
  if (kept.length === 0) {
    edits.replace(open + 1, close, '');
    return;
  }
  const lastKept = kept[kept.length - 1]!;
  for (const i of removed) {
    if (i < lastKept) edits.replace(all[i]![0]!, all[i + 1]![0]!, '');
  }
  const tail = [...removed].filter((i) => i > lastKept);
  if (tail.length > 0) edits.replace(all[lastKept]![1]!, all[Math.max(...tail)]![1]!, '');
}

/**
 * Removes the entries of `names` from the inventory text, keeping every other byte. A member of a range entry
 * (`range: gpu[01-04]`, its MACs often from the range's csv: file) cannot be removed alone: narrowing the range or
 * deleting its CSV row is the operator's call, so it is refused naming the entry's file and line and its CSV row.
 * A range whose members are all named is removed whole (its CSV file is left as it is). Unknown names are refused.
 * Nothing is returned half-done: every name is checked before the text is touched, and the result is validated.
 */
export function removeNodesFromText(text: string, file: string, names: readonly string[], readCsv: CsvReader = noCsvReader): NodeRemoval {
  const { entries } = parseInventoryDetailed(text, file, readCsv);
  const byName = new Map(entries.map((e) => [e.spec.name.toLowerCase(), e]));
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const removed: NodeRemoval['removed'] = [];
  const entryIndexes = new Set<number>();
  for (const name of names) {
    const entry = byName.get(name.toLowerCase());
    if (!entry) throw new RackseedError('NODE_NOT_FOUND', `no node "${name}" in ${file}`, { node: name });
    if (removed.some((r) => r.node === entry.spec.name)) continue;
    if (entry.spec.origin.range !== undefined) {
      const members = entries.filter((e) => e.index === entry.index);
      const missing = members.filter((m) => !wanted.has(m.spec.name.toLowerCase())).map((m) => m.spec.name);
      if (missing.length > 0) {
        const csv = entry.csv ? ` and delete its row ${entry.csv.file}:${entry.csv.line}` : '';
        throw new RackseedError(
          'INVENTORY_INVALID',
          `${entry.spec.name} is declared by ${describeEntry(entry)}, with ${missing.join(', ')}; it cannot be removed alone: ` +
            `narrow or split that range by hand${csv}, then reload (or name every member of the range to remove it whole)`,
          { node: entry.spec.name, file: entry.spec.origin.file, ...(entry.spec.origin.line !== undefined ? { line: entry.spec.origin.line } : {}) },
        );
      }
    }
    entryIndexes.add(entry.index);
    removed.push({ node: entry.spec.name, entry: describeEntry(entry) });
  }
  if (entryIndexes.size === 0) return { text, removed };

  const parsed = parseForEdit(text);
  const seq = parsed.doc.get('nodes', true);
  if (!isSeq(seq) || !seq.range) throw new RackseedError('INVENTORY_INVALID', `${file}: nodes: is not a list`);
  const ranges = seq.items.map((item) => (isMap(item) && item.range ? item.range : undefined));
  const edits = new TextEdits();
  if (seq.flow) {
    const all = ranges.map((r, i) => {
      if (!r) throw new RackseedError('INVENTORY_INVALID', `${file}: nodes[${i}] is not a map entry`);
      return r;
    });
    deleteFlowItems(edits, all, entryIndexes, seq.range[0], text.lastIndexOf(']', seq.range[1] - 1));
  } else {
    deleteBlockItems(edits, text, [...entryIndexes].map((i) => {
      const range = ranges[i];
      if (!range) throw new RackseedError('INVENTORY_INVALID', `${file}: nodes[${i}] is not a map entry`);
      return { range, where: `${file} nodes[${i}]` };
    }));
  }
  const out = edits.apply(text);
  const after = parseInventory(out, file, readCsv);
  // Every other node must still be there: a deletion that took a neighbour with it went wrong.
  const expected = entries.filter((e) => !entryIndexes.has(e.index)).map((e) => e.spec.name);
  if (expected.some((n) => !after.nodes.has(n)) || after.nodes.size !== expected.length) {
    throw new RackseedError('INTERNAL', `removing ${removed.map((r) => r.node).join(', ')} from ${file} did not leave the other nodes as they were`);
  }
  return { text: out, removed };
}
