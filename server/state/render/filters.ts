import { isForbiddenTemplateName } from '../../util/nunjucks-guard.js';
import { createHash } from 'node:crypto';
import nunjucks from 'nunjucks';
import { Document, visit } from 'yaml';

/**
 * Jinja/Salt filters and tests nunjucks lacks, with Jinja semantics. Errors thrown here are plain Errors: the
 * renderer adds the file and line nunjucks reports for them.
 *
 * Dict iteration: nunjucks cannot call `d.items()`; write `{% for k, v in d %}` or `{% for k, v in d|items %}`
 * (also `d|keys`, `d|values`). Keyword arguments (`xs|map(attribute='name')`) arrive as a trailing object.
 */
interface FilterThis {
  /** getTest exists in nunjucks 3 but not in @types/nunjucks. */
  env: nunjucks.Environment & { getTest(name: string): (...args: unknown[]) => unknown };
}
type Filter = (this: FilterThis, value: unknown, ...args: unknown[]) => unknown;

interface Keywords {
  [key: string]: unknown;
}

/** Splits nunjucks' trailing keyword-argument object off the positional arguments. */
function splitKeywords(args: unknown[]): { positional: unknown[]; keywords: Keywords } {
  const last = args[args.length - 1];
  if (last && typeof last === 'object' && (last as Record<string, unknown>)['__keywords'] === true) {
    const { __keywords: _ignored, ...keywords } = last as Record<string, unknown>;
    return { positional: args.slice(0, -1), keywords };
  }
  return { positional: args, keywords: {} };
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof nunjucks.runtime.SafeString);
}

function asList(value: unknown, filter: string): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'string') return [...value];
  if (isMapping(value)) return Object.keys(value);
  throw new Error(`${filter}: expected a list, got ${describe(value)}`);
}

function asMapping(value: unknown, filter: string): Record<string, unknown> {
  if (isMapping(value)) return value;
  throw new Error(`${filter}: expected a mapping, got ${describe(value)}`);
}

function asString(value: unknown, filter: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof nunjucks.runtime.SafeString) return value.toString();
  throw new Error(`${filter}: expected a string, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (value === undefined) return 'an undefined value';
  if (value === null) return 'none';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : `a ${typeof value}`;
}

/**
 * `a.b.0` on nested mappings/lists, as Jinja's attribute= arguments allow. Own properties only, and never the names
 * the template guard refuses: this lookup does not go through nunjucks' runtime, and `constructor.constructor` from
 * any value is Function (code run in the server).
 */
function attributeOf(item: unknown, path: string): unknown {
  let current = item;
  for (const part of path.split('.')) {
    if (isForbiddenTemplateName(part)) throw new Error(`templates may not use "${part}"`);
    if (current === null || current === undefined || typeof current !== 'object' || !Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/** Stable identity for unique/union/...: structural for lists and mappings. */
function identity(value: unknown): string {
  return typeof value === 'object' && value !== null ? `o:${JSON.stringify(value)}` : `${typeof value}:${String(value)}`;
}

function uniqueBy(values: unknown[], key: (v: unknown) => string): unknown[] {
  const seen = new Set<string>();
  return values.filter((v) => {
    const k = key(v);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Python `re` syntax to JavaScript: named groups and inline flags. */
function pythonRegex(pattern: unknown, flags: { ignorecase?: unknown; multiline?: unknown }, global: boolean, filter: string): RegExp {
  let source = asString(pattern, filter).replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
  let jsFlags = global ? 'g' : '';
  const inline = /^\(\?([aiLmsux]+)\)/.exec(source);
  if (inline) {
    source = source.slice(inline[0].length);
    if (inline[1]!.includes('i')) jsFlags += 'i';
    if (inline[1]!.includes('m')) jsFlags += 'm';
    if (inline[1]!.includes('s')) jsFlags += 's';
  }
  if (flags.ignorecase && !jsFlags.includes('i')) jsFlags += 'i';
  if (flags.multiline && !jsFlags.includes('m')) jsFlags += 'm';
  try {
    return new RegExp(source, jsFlags);
  } catch (e) {
    throw new Error(`${filter}: invalid regular expression ${JSON.stringify(source)}: ${(e as Error).message}`);
  }
}

/** Python replacement syntax (`\1`, `\g<1>`, `\g<name>`) to JavaScript's (`$1`, `$<name>`). */
function pythonReplacement(replacement: string): string {
  return replacement
    .replace(/\$/g, '$$$$')
    .replace(/\\g<(\d+)>/g, '$$$1')
    .replace(/\\g<(\w+)>/g, '$$<$1>')
    .replace(/\\(\d+)/g, '$$$1')
    .replace(/\\\\/g, '\\');
}

function regexFlags(positional: unknown[], keywords: Keywords): { ignorecase?: unknown; multiline?: unknown } {
  return { ignorecase: keywords['ignorecase'] ?? positional[0], multiline: keywords['multiline'] ?? positional[1] };
}

/** Python's `%` formatting for %s %d %i %f %x %o %r %% with optional width/precision/flags. */
export function formatPrintf(format: string, args: unknown[]): string {
  let next = 0;
  const out = format.replace(/%([-+ 0#]*)(\d+)?(?:\.(\d+))?([sdifxXorc%])/g, (whole, flags: string, width: string | undefined, precision: string | undefined, conversion: string) => {
    if (conversion === '%') return '%';
    if (next >= args.length) throw new Error(`format: "${format}" needs more arguments than the ${args.length} given`);
    const arg = args[next++];
    let text: string;
    switch (conversion) {
      case 's':
      case 'r':
        text = typeof arg === 'string' ? arg : arg === null ? 'None' : typeof arg === 'object' ? JSON.stringify(arg) : String(arg);
        if (precision !== undefined) text = text.slice(0, Number(precision));
        break;
      case 'd':
      case 'i': {
        const n = Number(arg);
        if (!Number.isFinite(n)) throw new Error(`format: %${conversion} needs a number, got ${JSON.stringify(arg)}`);
        text = String(Math.trunc(n));
        break;
      }
      case 'f': {
        const n = Number(arg);
        if (!Number.isFinite(n)) throw new Error(`format: %f needs a number, got ${JSON.stringify(arg)}`);
        text = n.toFixed(precision === undefined ? 6 : Number(precision));
        break;
      }
      case 'x':
      case 'X':
      case 'o': {
        const n = Number(arg);
        if (!Number.isInteger(n)) throw new Error(`format: %${conversion} needs an integer, got ${JSON.stringify(arg)}`);
        text = n.toString(conversion === 'o' ? 8 : 16);
        if (conversion === 'X') text = text.toUpperCase();
        break;
      }
      case 'c':
        text = typeof arg === 'number' ? String.fromCharCode(arg) : String(arg);
        break;
      default:
        return whole;
    }
    if (flags.includes('+') && /^[0-9]/.test(text) && 'dif'.includes(conversion)) text = `+${text}`;
    const w = width === undefined ? 0 : Number(width);
    if (text.length < w) text = flags.includes('-') ? text.padEnd(w) : flags.includes('0') && 'difxXo'.includes(conversion) ? text.padStart(w, '0') : text.padStart(w);
    return text;
  });
  if (next < args.length) throw new Error(`format: "${format}" uses ${next} of the ${args.length} arguments given`);
  return out;
}

/** shlex.quote: safe for a POSIX shell word. */
export function shellQuote(value: string): string {
  if (value === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'"'"'`)}'`;
}

/** One-line YAML (flow style), safe to embed after `key: `; multi-line strings are double-quoted. */
export function toYamlFlow(value: unknown): string {
  if (value === undefined) throw new Error('yaml: the value is undefined');
  const doc = new Document(value);
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && /[\n\r\t]/.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc.toString({ collectionStyle: 'flow', lineWidth: 0, blockQuote: false }).replace(/\n$/, '');
}

function toJson(value: unknown, indent?: unknown): string {
  if (value === undefined) throw new Error('tojson: the value is undefined');
  const spaces = typeof indent === 'number' ? indent : isMapping(indent) && typeof indent['indent'] === 'number' ? indent['indent'] : undefined;
  return JSON.stringify(value, null, spaces);
}

/** Salt's to_bool. */
export function toBool(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value > 0;
  if (typeof value === 'string') return ['true', 'yes', 'on', '1', 'y'].includes(value.trim().toLowerCase());
  if (Array.isArray(value)) return value.length > 0;
  if (isMapping(value)) return Object.keys(value).length > 0;
  return false;
}

/** Python's str.split: no separator splits on runs of whitespace and drops empty ends. */
function pythonSplit(value: string, separator: unknown, maxsplit: unknown): string[] {
  const limit = typeof maxsplit === 'number' && maxsplit >= 0 ? maxsplit : Infinity;
  if (separator === undefined || separator === null) {
    const parts: string[] = [];
    let rest = value.trimStart();
    while (rest !== '') {
      if (parts.length === limit) {
        parts.push(rest);
        break;
      }
      const m = /\s+/.exec(rest);
      if (!m) {
        parts.push(rest);
        break;
      }
      parts.push(rest.slice(0, m.index));
      rest = rest.slice(m.index + m[0].length);
    }
    return parts;
  }
  const sep = asString(separator, 'split');
  if (sep === '') throw new Error('split: empty separator');
  const all = value.split(sep);
  return limit >= all.length - 1 ? all : [...all.slice(0, limit), all.slice(limit).join(sep)];
}

function nonEmpty(values: unknown[], filter: string): unknown[] {
  if (values.length === 0) throw new Error(`${filter}: the list is empty`);
  return values;
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

function selectAttr(expected: boolean): Filter {
  return function (this: FilterThis, value: unknown, ...rest: unknown[]): unknown {
    const { positional } = splitKeywords(rest);
    const [attribute, testName, ...testArgs] = positional;
    const path = asString(attribute, expected ? 'selectattr' : 'rejectattr');
    const test = testName === undefined ? undefined : this.env.getTest(asString(testName, 'selectattr'));
    return asList(value, expected ? 'selectattr' : 'rejectattr').filter((item) => {
      const attr = attributeOf(item, path);
      const passed = test ? Boolean(test.call(this, attr, ...testArgs)) : Boolean(attr);
      return passed === expected;
    });
  };
}

export const FILTERS: Record<string, Filter> = {
  tojson: (value, indent) => toJson(value, indent),
  json: (value, indent) => toJson(value, indent),
  yaml: (value) => toYamlFlow(value),
  to_yaml: (value) => toYamlFlow(value),
  unique(value, ...rest) {
    const { positional, keywords } = splitKeywords(rest);
    const attribute = keywords['attribute'] ?? positional[1];
    const list = asList(value, 'unique');
    return uniqueBy(list, (v) => identity(attribute === undefined ? v : attributeOf(v, asString(attribute, 'unique'))));
  },
  map(value, ...rest) {
    const { positional, keywords } = splitKeywords(rest);
    const list = asList(value, 'map');
    if (keywords['attribute'] !== undefined) {
      const path = asString(keywords['attribute'], 'map');
      const hasDefault = 'default' in keywords;
      return list.map((item) => {
        const v = attributeOf(item, path);
        if (v === undefined && !hasDefault) throw new Error(`map: an item has no attribute "${path}"`);
        return v === undefined ? keywords['default'] : v;
      });
    }
    const [name, ...filterArgs] = positional;
    if (name === undefined) throw new Error("map: name a filter (xs|map('upper')) or an attribute (xs|map(attribute='name'))");
    const filter = this.env.getFilter(asString(name, 'map')) as (...a: unknown[]) => unknown;
    return list.map((item) => filter.call(this, item, ...filterArgs));
  },
  selectattr: selectAttr(true),
  rejectattr: selectAttr(false),
  regex_replace(value, pattern, replacement, ...rest) {
    const { positional, keywords } = splitKeywords(rest);
    const re = pythonRegex(pattern, regexFlags(positional, keywords), true, 'regex_replace');
    return asString(value, 'regex_replace').replace(re, pythonReplacement(asString(replacement ?? '', 'regex_replace')));
  },
  regex_search(value, pattern, ...rest) {
    const { positional, keywords } = splitKeywords(rest);
    const m = pythonRegex(pattern, regexFlags(positional, keywords), false, 'regex_search').exec(asString(value, 'regex_search'));
    return m ? (m.length > 1 ? m.slice(1) : [m[0]]) : null;
  },
  regex_match(value, pattern, ...rest) {
    const { positional, keywords } = splitKeywords(rest);
    const re = pythonRegex(pattern, regexFlags(positional, keywords), false, 'regex_match');
    const m = new RegExp(`^(?:${re.source})`, re.flags).exec(asString(value, 'regex_match'));
    return m ? (m.length > 1 ? m.slice(1) : [m[0]]) : null;
  },
  format: (value, ...args) => formatPrintf(asString(value, 'format'), args),
  items: (value) => Object.entries(asMapping(value, 'items')),
  keys: (value) => Object.keys(asMapping(value, 'keys')),
  values: (value) => Object.values(asMapping(value, 'values')),
  quote: (value) => shellQuote(asString(value, 'quote')),
  b64encode: (value) => Buffer.from(asString(value, 'b64encode'), 'utf8').toString('base64'),
  b64decode(value) {
    const text = asString(value, 'b64decode').trim();
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new Error('b64decode: not base64');
    return Buffer.from(text, 'base64').toString('utf8');
  },
  sha256: (value) => createHash('sha256').update(asString(value, 'sha256'), 'utf8').digest('hex'),
  is_list: (value) => Array.isArray(value),
  bool: (value) => toBool(value),
  to_bool: (value) => toBool(value),
  split: (value, separator, maxsplit) => pythonSplit(asString(value, 'split'), separator, maxsplit),
  startswith: (value, prefix) => asString(value, 'startswith').startsWith(asString(prefix, 'startswith')),
  endswith: (value, suffix) => asString(value, 'endswith').endsWith(asString(suffix, 'endswith')),
  min: (value) => [...nonEmpty(asList(value, 'min'), 'min')].sort(compare)[0],
  max: (value) => [...nonEmpty(asList(value, 'max'), 'max')].sort(compare).at(-1),
  flatten: (value) => asList(value, 'flatten').flat(Infinity),
  union: (value, other) => uniqueBy([...asList(value, 'union'), ...asList(other, 'union')], identity),
  intersect(value, other) {
    const keep = new Set(asList(other, 'intersect').map(identity));
    return uniqueBy(asList(value, 'intersect').filter((v) => keep.has(identity(v))), identity);
  },
  difference(value, other) {
    const drop = new Set(asList(other, 'difference').map(identity));
    return asList(value, 'difference').filter((v) => !drop.has(identity(v)));
  },
};

/** Jinja tests nunjucks lacks (`x is none`, `x is mapping`, `x is in(xs)`). */
export const TESTS: Record<string, (value: unknown, ...args: unknown[]) => boolean> = {
  none: (value) => value === null,
  mapping: (value) => isMapping(value),
  sequence: (value) => Array.isArray(value) || typeof value === 'string',
  list: (value) => Array.isArray(value),
  boolean: (value) => typeof value === 'boolean',
  in: (value, container) => (Array.isArray(container) ? container.includes(value) : typeof container === 'string' ? container.includes(String(value)) : isMapping(container) ? Object.hasOwn(container, String(value)) : false),
};

/**
 * What `{{ expr }}` may print (see preprocess.ts): strings, numbers, booleans and macro output. Undefined and none
 * are errors naming the expression; lists and mappings would print as `a,b` and `[object Object]`, so they are an
 * error that says which filter to use.
 */
export function outputFilter(value: unknown, expression?: unknown): unknown {
  const what = typeof expression === 'string' ? `\`${expression}\`` : 'the value';
  if (value === undefined) throw new Error(`${what} is undefined`);
  if (value === null) throw new Error(`${what} is none (nothing to print; use |default('...') to print a fallback)`);
  if (value instanceof nunjucks.runtime.SafeString) return value;
  if (Array.isArray(value) || isMapping(value)) {
    throw new Error(`${what} is ${describe(value)}; nunjucks would print ${Array.isArray(value) ? '"a,b"' : '"[object Object]"'}: use |tojson, |yaml or |join(", ")`);
  }
  if (typeof value === 'number' && Number.isNaN(value)) throw new Error(`${what} is NaN (arithmetic on something that is not a number?)`);
  return value;
}
