import { danglingAlias, danglingAliasProblem, findAlias } from '../../util/yaml-document.js';
import { LineCounter, isAlias, isMap, isNode, isScalar, isSeq, parseDocument, visit, type Document, type Node, type Pair } from 'yaml';
import { RackseedError } from '../../model/errors.js';
import { isInitFile } from '../source.js';
import type { ExcludeDecl, ExtendDecl, SlsDocument, SourceRef, StateDecl } from '../types.js';
import { classifyArgs, type ArgEntry, type ClassifiedArgs, type Fail } from './keywords.js';
import { renderedLineMapper } from './lines.js';

export interface SlsParseInput {
  /** Dotted SLS name ('slurm.compute'). */
  sls: string;
  /** The file as the operator sees it (errors). */
  file: string;
  /** The tree path ('slurm/compute.sls'): tells whether this is an init.sls for relative includes. */
  path: string;
  /** The rendered YAML. */
  rendered: string;
  /** The template text before rendering, to map YAML lines back to the lines the operator edits. */
  template?: string;
}

const FUNCTION_NAME = /^[a-z_][a-z0-9_]*$/;

/**
 * Rendered SLS YAML -> SlsDocument. Both Salt forms are accepted: `ID: {pkg.installed: [args]}` and
 * `ID: {pkg: [installed, args]}` (and the short `ID: pkg.installed`). Errors are SLS_INVALID naming file, line,
 * state ID and key.
 */
/**
 * YAML 1.2 reads `mode: 0o640` as the number 416, and a mode given as a number is read as octal digits (Salt's
 * `mode: 644`): 416 became mode 0416, world-writable. An octal or hex literal is kept as the text it was written
 * as, so `0o640` is the mode 0640 and `0x1a4` is refused as no mode at all.
 */
function keepRadixLiterals(doc: Document): void {
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'number' && (node.format === 'OCT' || node.format === 'HEX') && typeof node.source === 'string') node.value = node.source;
    },
  });
}

export function parseSls(input: SlsParseInput): SlsDocument {
  const lineCounter = new LineCounter();
  const doc = parseDocument(input.rendered, { lineCounter, uniqueKeys: true });
  const mapLine = input.template === undefined ? (l: number) => l : renderedLineMapper(input.template, input.rendered);
  const lineAt = (offset: number): number => mapLine(lineCounter.linePos(offset).line);
  const lineOf = (node: unknown): number => (isNode(node) && node.range ? lineAt(node.range[0]) : 0);
  const invalid = (line: number, what: string, problem: string, details: Record<string, unknown> = {}): never => {
    throw new RackseedError('SLS_INVALID', `${input.file}:${line}: ${what}${what ? ' ' : ''}${problem}`, { file: input.file, line, sls: input.sls, ...details });
  };

  const firstError = doc.errors[0];
  if (firstError?.code === 'DUPLICATE_KEY') {
    // The library's message names no key; the error points at the second one, whose text starts there.
    const key = /^("[^"\n]*"|'[^'\n]*'|[^:\n]+?)\s*:/.exec(input.rendered.slice(firstError.pos[0]))?.[1] ?? '?';
    invalid(lineAt(firstError.pos[0]), '', `is not valid YAML: key ${key.startsWith('"') || key.startsWith("'") ? key : JSON.stringify(key)} appears twice in one mapping (a state ID, or a key of one state)`, { key });
  }
  if (firstError) invalid(lineAt(firstError.pos[0]), '', `is not valid YAML: ${firstError.message.split('\n')[0]}`);
  const dangling = danglingAlias(doc);
  if (dangling) invalid(lineOf(dangling), '', danglingAliasProblem(dangling));
  try {
    return parseSlsContents(input, doc, lineOf, invalid);
  } catch (err) {
    // The YAML library refuses aliases that expand too far (a "billion laughs") with a bare ReferenceError.
    if (err instanceof ReferenceError) return invalid(lineOf(findAlias(doc)), '', `YAML aliases cannot be expanded (${err.message})`);
    throw err;
  }
}

function parseSlsContents(
  input: SlsParseInput,
  doc: Document,
  lineOf: (node: unknown) => number,
  invalid: (line: number, what: string, problem: string, details?: Record<string, unknown>) => never,
): SlsDocument {
  keepRadixLiterals(doc);
  const result: SlsDocument = { sls: input.sls, file: input.file, includes: [], states: [], extends: [], excludes: [] };
  const root = deref(doc, doc.contents);
  if (root === null || (isScalar(root) && root.value === null)) return result;
  if (!isMap(root)) return invalid(lineOf(root), '', 'must be a mapping of state IDs (and include/extend/exclude)');

  const ctx: Ctx = { doc, input, lineOf, invalid };
  for (const pair of root.items) {
    const key = keyOf(ctx, pair);
    const value = deref(doc, pair.value);
    if (key === 'include') result.includes.push(...parseIncludes(ctx, value, lineOf(pair.key)));
    else if (key === 'exclude') result.excludes.push(...parseExcludes(ctx, value, lineOf(pair.key)));
    else if (key === 'extend') result.extends.push(...parseExtends(ctx, value, lineOf(pair.key)));
    else result.states.push(...parseState(ctx, key, value, lineOf(pair.key)));
  }
  return result;
}

interface Ctx {
  doc: Document;
  input: SlsParseInput;
  lineOf(node: unknown): number;
  invalid(line: number, what: string, problem: string, details?: Record<string, unknown>): never;
}

function deref(doc: Document, node: unknown): Node | null {
  if (isAlias(node)) return (node.resolve(doc) as Node | undefined) ?? null;
  return isNode(node) ? node : null;
}

function toJs(doc: Document, node: unknown): unknown {
  const n = deref(doc, node);
  return n === null ? null : n.toJS(doc);
}

function keyOf(ctx: Ctx, pair: Pair): string {
  const key = deref(ctx.doc, pair.key);
  if (!isScalar(key) || key.value === null || typeof key.value === 'object') return ctx.invalid(ctx.lineOf(pair.key), '', 'keys must be plain strings');
  return String(key.value);
}

/** Salt's relative includes: `.foo` is a sibling of this SLS (a child when this is an init.sls), `..foo` one up. */
export function resolveInclude(includingSls: string, includingPath: string, target: string): string | undefined {
  const m = /^(\.+)(.*)$/.exec(target);
  if (!m) return target;
  const levels = m[1]!.length;
  const base = includingSls.split('.');
  if (isInitFile(includingPath)) base.push('init');
  if (levels > base.length || m[2] === '') return undefined;
  return [...base.slice(0, base.length - levels), m[2]!].filter((s) => s !== '').join('.');
}

function parseIncludes(ctx: Ctx, value: Node | null, line: number): SlsDocument['includes'] {
  const items = isSeq(value) ? value.items : value === null ? [] : [value];
  return items.map((item) => {
    const itemLine = ctx.lineOf(item) || line;
    const raw = toJs(ctx.doc, item);
    if (typeof raw !== 'string' || raw === '') return ctx.invalid(itemLine, 'include:', `items must be SLS names, got ${JSON.stringify(raw)}`, { key: 'include' });
    const sls = resolveInclude(ctx.input.sls, ctx.input.path, raw);
    if (sls === undefined) return ctx.invalid(itemLine, 'include:', `"${raw}" goes above the top of the state tree (from ${ctx.input.sls})`, { key: 'include' });
    return { sls, source: { file: ctx.input.file, line: itemLine } };
  });
}

function parseExcludes(ctx: Ctx, value: Node | null, line: number): ExcludeDecl[] {
  const items = isSeq(value) ? value.items : [];
  if (!isSeq(value)) ctx.invalid(line, 'exclude:', 'must be a list of "- id: X" / "- sls: Y"', { key: 'exclude' });
  return items.map((item) => {
    const raw = toJs(ctx.doc, item);
    const itemLine = ctx.lineOf(item) || line;
    const entries = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? Object.entries(raw) : [];
    const [kind, target] = entries[0] ?? [];
    if (entries.length !== 1 || (kind !== 'id' && kind !== 'sls') || typeof target !== 'string') {
      return ctx.invalid(itemLine, 'exclude:', `items must be "- id: X" or "- sls: Y", got ${JSON.stringify(raw)}`, { key: 'exclude' });
    }
    return { kind, target: kind === 'sls' ? resolveInclude(ctx.input.sls, ctx.input.path, target) ?? target : target, source: { file: ctx.input.file, line: itemLine } };
  });
}

/** A state ID's module entries: `[module, fun | undefined, argument entries, line]`. */
interface ModuleEntry {
  module: string;
  fun: string | undefined;
  entries: ArgEntry[];
  line: number;
}

function moduleEntries(ctx: Ctx, id: string, value: Node | null, idLine: number, allowMissingFun: boolean): ModuleEntry[] {
  // Short form `ID: pkg.installed`.
  if (isScalar(value) && typeof value.value === 'string') {
    const [module, fun] = splitModuleKey(ctx, id, value.value, ctx.lineOf(value));
    if (!fun) return ctx.invalid(ctx.lineOf(value), `state "${id}"`, `"${value.value}" needs a function (pkg.installed)`, { id });
    return [{ module, fun, entries: [], line: ctx.lineOf(value) }];
  }
  if (!isMap(value)) return ctx.invalid(idLine, `state "${id}"`, 'must be a mapping of module.function to a list of arguments', { id });
  const seenModules = new Map<string, number>();
  return value.items.map((pair): ModuleEntry => {
    const key = keyOf(ctx, pair);
    const line = ctx.lineOf(pair.key);
    const [module, keyFun] = splitModuleKey(ctx, id, key, line);
    if (seenModules.has(module)) return ctx.invalid(line, `state "${id}"`, `declares ${module} twice (first on line ${seenModules.get(module)}); one function per module per ID`, { id, key });
    seenModules.set(module, line);
    const body = deref(ctx.doc, pair.value);
    let fun = keyFun;
    const entries: ArgEntry[] = [];
    const items = body === null || (isScalar(body) && body.value === null) ? [] : isSeq(body) ? body.items : undefined;
    if (items === undefined) return ctx.invalid(line, `state "${id}" ${key}:`, 'must be a list of "- argument: value" entries', { id, key });
    for (const raw of items) {
      const item = deref(ctx.doc, raw);
      const itemLine = ctx.lineOf(item) || line;
      if (isScalar(item) && typeof item.value === 'string') {
        if (fun !== undefined) return ctx.invalid(itemLine, `state "${id}" ${key}:`, `"${item.value}" is a second function for ${module} (already ${fun}); arguments are "- key: value"`, { id, key });
        fun = item.value;
        continue;
      }
      if (!isMap(item)) return ctx.invalid(itemLine, `state "${id}" ${key}:`, `arguments must be "- key: value" entries, got ${JSON.stringify(toJs(ctx.doc, item))}`, { id, key });
      for (const argPair of item.items) entries.push({ key: keyOf(ctx, argPair), value: toJs(ctx.doc, argPair.value), line: ctx.lineOf(argPair.key) });
    }
    if (fun === undefined && !allowMissingFun) return ctx.invalid(line, `state "${id}" ${key}:`, `names no function (write ${module}.FUNCTION or put the function first in the list)`, { id, key });
    if (fun !== undefined && !FUNCTION_NAME.test(fun)) return ctx.invalid(line, `state "${id}" ${key}:`, `"${fun}" is not a function name`, { id, key });
    return { module, fun, entries, line };
  });
}

function splitModuleKey(ctx: Ctx, id: string, key: string, line: number): [string, string | undefined] {
  const dot = key.indexOf('.');
  const module = dot < 0 ? key : key.slice(0, dot);
  const fun = dot < 0 ? undefined : key.slice(dot + 1);
  if (!FUNCTION_NAME.test(module)) return ctx.invalid(line, `state "${id}"`, `"${key}" is not a state module (expected module.function such as pkg.installed)`, { id, key });
  return [module, fun];
}

function failFor(ctx: Ctx, id: string, module: string): Fail {
  return (key, line, problem) => ctx.invalid(line, `state "${id}" ${module} ${key}:`, problem, { id, key });
}

function parseState(ctx: Ctx, id: string, value: Node | null, idLine: number): StateDecl[] {
  const decls: StateDecl[] = [];
  for (const entry of moduleEntries(ctx, id, value, idLine, false)) {
    const fail = failFor(ctx, id, entry.module);
    const base = classifyArgs(entry.entries, fail);
    if (base.names && base.name !== undefined) fail('names', base.keywordLines.get('names')!, 'and name cannot both be given');
    const source: SourceRef = { file: ctx.input.file, line: idLine };
    if (!base.names) {
      decls.push(toDecl(ctx, id, entry, base, base.name ?? id, source));
      continue;
    }
    const seen = new Set<string>();
    for (const item of base.names) {
      if (seen.has(item.name)) fail('names', base.keywordLines.get('names')!, `"${item.name}" is listed twice`);
      seen.add(item.name);
      // A name's own arguments replace the state's arguments of the same key.
      const overridden = new Set(item.entries.map((e) => e.key));
      const merged = [...entry.entries.filter((e) => e.key !== 'names' && !overridden.has(e.key)), ...item.entries];
      const perName = classifyArgs(merged, fail);
      if (perName.name !== undefined) fail('name', item.entries[0]?.line ?? idLine, 'cannot be given inside names');
      decls.push(toDecl(ctx, id, entry, perName, item.name, source));
    }
  }
  return decls;
}

function toDecl(ctx: Ctx, id: string, entry: ModuleEntry, c: ClassifiedArgs, name: string, source: SourceRef): StateDecl {
  const decl: StateDecl = {
    id,
    sls: ctx.input.sls,
    module: entry.module,
    fun: entry.fun!,
    name,
    args: c.args,
    requisites: c.requisites,
    unless: c.unless,
    onlyif: c.onlyif,
    creates: c.creates,
    failhard: c.failhard,
    source,
  };
  if (c.order !== undefined) decl.order = c.order;
  if (c.retry !== undefined) decl.retry = c.retry;
  return decl;
}

/** Keywords `extend:` may not change: it replaces arguments and appends requisites, nothing else. */
const NOT_EXTENDABLE = ['names', 'order', 'unless', 'onlyif', 'creates', 'failhard', 'retry'];

function parseExtends(ctx: Ctx, value: Node | null, line: number): ExtendDecl[] {
  if (!isMap(value)) return ctx.invalid(line, 'extend:', 'must be a mapping of state IDs', { key: 'extend' });
  const out: ExtendDecl[] = [];
  for (const pair of value.items) {
    const id = keyOf(ctx, pair);
    const idLine = ctx.lineOf(pair.key);
    for (const entry of moduleEntries(ctx, id, deref(ctx.doc, pair.value), idLine, true)) {
      const fail: Fail = (key, l, problem) => ctx.invalid(l, `extend "${id}" ${entry.module} ${key}:`, problem, { id, key });
      const c = classifyArgs(entry.entries, fail);
      for (const keyword of NOT_EXTENDABLE) {
        const at = c.keywordLines.get(keyword);
        if (at !== undefined) fail(keyword, at, 'cannot be changed by extend (only arguments, name and requisites)');
      }
      const args = c.name === undefined ? c.args : { ...c.args, name: c.name };
      out.push({ id, module: entry.module, args, requisites: c.requisites, source: { file: ctx.input.file, line: idLine } });
    }
  }
  return out;
}
