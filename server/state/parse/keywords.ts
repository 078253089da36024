import type { OrderValue, RetrySpec, StateDecl } from '../types.js';
import { UNSUPPORTED_KEYWORDS, declared, parseRequisiteRefs, requisiteKeyword } from './requisites.js';

/** One `- key: value` argument of a state, with the rendered line it sits on. */
export interface ArgEntry {
  key: string;
  value: unknown;
  line: number;
}

/** A `names:` item: the name and its own arguments (which override the state's). */
export interface NameItem {
  name: string;
  entries: ArgEntry[];
}

/** A state's arguments split into module arguments and the global keywords StateDecl carries. */
export interface ClassifiedArgs extends Pick<StateDecl, 'args' | 'requisites' | 'order' | 'unless' | 'onlyif' | 'creates' | 'failhard' | 'retry'> {
  name?: string;
  names?: NameItem[];
  /** Keys seen, with their lines, so callers can refuse keywords that make no sense where they are (extend). */
  keywordLines: Map<string, number>;
}

export type Fail = (key: string, line: number, problem: string) => never;

export const GLOBAL_KEYWORDS = ['name', 'names', 'order', 'unless', 'onlyif', 'creates', 'failhard', 'retry'] as const;

/** Salt's `retry: True` defaults. */
const RETRY_DEFAULTS: RetrySpec = { attempts: 2, interval: 30, until: true };

/** Splits a state's argument list into module args, requisites and the global keywords. */
export function classifyArgs(entries: ArgEntry[], fail: Fail): ClassifiedArgs {
  const out: ClassifiedArgs = { args: {}, requisites: [], unless: [], onlyif: [], creates: [], failhard: false, keywordLines: new Map() };
  const seen = new Map<string, number>();
  for (const { key, value, line } of entries) {
    if (seen.has(key)) fail(key, line, `given twice (first on line ${seen.get(key)})`);
    seen.set(key, line);
    const requisite = requisiteKeyword(key);
    if (requisite) {
      const refs = parseRequisiteRefs(value);
      if (typeof refs === 'string') fail(key, line, refs);
      out.requisites.push(...declared(requisite.kind, requisite.reverse, refs));
      out.keywordLines.set(key, line);
      continue;
    }
    const unsupported = UNSUPPORTED_KEYWORDS.get(key);
    if (unsupported !== undefined) fail(key, line, `is not supported by rackseed (${unsupported})`);
    if ((GLOBAL_KEYWORDS as readonly string[]).includes(key)) out.keywordLines.set(key, line);
    switch (key) {
      case 'name':
        if (typeof value !== 'string' && typeof value !== 'number') fail(key, line, `must be a string, got ${JSON.stringify(value)}`);
        out.name = String(value);
        break;
      case 'names':
        out.names = parseNames(value, line, fail);
        break;
      case 'order':
        out.order = parseOrder(value, line, fail);
        break;
      case 'unless':
      case 'onlyif':
      case 'creates':
        out[key] = stringList(key, value, line, fail);
        break;
      case 'failhard':
        if (typeof value !== 'boolean') fail(key, line, `must be true or false, got ${JSON.stringify(value)}`);
        out.failhard = value;
        break;
      case 'retry':
        out.retry = parseRetry(value, line, fail);
        break;
      default:
        out.args[key] = value;
    }
  }
  return out;
}

function parseOrder(value: unknown, line: number, fail: Fail): OrderValue {
  if (value === 'first' || value === 'last') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  return fail('order', line, `must be an integer, "first" or "last", got ${JSON.stringify(value)}`);
}

function stringList(key: string, value: unknown, line: number, fail: Fail): string[] {
  const list = Array.isArray(value) ? value : [value];
  for (const item of list) {
    if (typeof item !== 'string' || item === '') {
      fail(key, line, `must be a command string or a list of them, got ${JSON.stringify(item)}${typeof item === 'object' && item !== null ? ' (the fun: form of Salt is not supported)' : ''}`);
    }
  }
  return list as string[];
}

function parseRetry(value: unknown, line: number, fail: Fail): RetrySpec | undefined {
  if (value === true) return { ...RETRY_DEFAULTS };
  if (value === false) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail('retry', line, `must be true, false or a mapping of attempts/interval/until, got ${JSON.stringify(value)}`);
  const spec = { ...RETRY_DEFAULTS };
  for (const [k, v] of Object.entries(value)) {
    if (k === 'attempts' && Number.isInteger(v) && (v as number) >= 1) spec.attempts = v as number;
    else if (k === 'interval' && typeof v === 'number' && v >= 0) spec.interval = v;
    else if (k === 'until' && typeof v === 'boolean') spec.until = v;
    else if (k === 'attempts' || k === 'interval' || k === 'until') fail(`retry.${k}`, line, `invalid value ${JSON.stringify(v)} (attempts: integer >= 1, interval: seconds >= 0, until: true/false)`);
    else fail(`retry.${k}`, line, 'unknown key (expected attempts, interval, until)');
  }
  return spec;
}

function parseNames(value: unknown, line: number, fail: Fail): NameItem[] {
  if (!Array.isArray(value) || value.length === 0) return fail('names', line, 'must be a non-empty list');
  return value.map((item): NameItem => {
    if (typeof item === 'string' || typeof item === 'number') return { name: String(item), entries: [] };
    if (item !== null && typeof item === 'object' && !Array.isArray(item) && Object.keys(item).length === 1) {
      const [name, args] = Object.entries(item)[0]!;
      return { name, entries: argEntriesOf(args, line, `names.${name}`, fail) };
    }
    return fail('names', line, `items must be names or "name: [args]" mappings, got ${JSON.stringify(item)}`);
  });
}

/** `[{a: 1}, {b: 2}]` or `{a: 1, b: 2}` as argument entries (used for per-name arguments). */
function argEntriesOf(value: unknown, line: number, key: string, fail: Fail): ArgEntry[] {
  if (value === null || value === undefined) return [];
  const maps = Array.isArray(value) ? value : [value];
  const entries: ArgEntry[] = [];
  for (const m of maps) {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) fail(key, line, `arguments must be "- key: value" entries, got ${JSON.stringify(m)}`);
    for (const [k, v] of Object.entries(m)) entries.push({ key: k, value: v, line });
  }
  return entries;
}
