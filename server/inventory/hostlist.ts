import { RackseedError } from '../model/errors.js';

/** Above this a range is almost certainly a typo (gpu[1-1000000]); expanding it would only exhaust memory. */
export const MAX_HOSTLIST_HOSTS = 100_000;

interface NumberRun {
  lo: number;
  hi: number;
  /** Zero padding comes from how the lower bound is written: [001-128] pads to 3, [8-10] does not pad. */
  width: number;
}

/** An expression such as r[1-2]n[01-02]: literal text alternating with bracket groups. */
type Part = string | NumberRun[];

function invalid(expr: string, why: string): RackseedError {
  return new RackseedError('HOSTLIST_INVALID', `hostlist "${expr}": ${why}`, { expr });
}

/** Splits on commas outside brackets, so "gpu[1-2,5],head01" is two expressions. */
function splitTopLevel(expr: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === '[') depth++;
    else if (c === ']') depth--;
    else if (c === ',' && depth === 0) {
      out.push(expr.slice(start, i));
      start = i + 1;
    }
  }
  out.push(expr.slice(start));
  return out.map((s) => s.trim());
}

function parseRun(whole: string, item: string): NumberRun {
  const m = /^(\d+)(?:-(\d+))?$/.exec(item.trim());
  if (!m) throw invalid(whole, `"${item}" is not a number or a lo-hi range`);
  const loText = m[1]!;
  const hiText = m[2] ?? loText;
  const lo = Number(loText);
  const hi = Number(hiText);
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi)) throw invalid(whole, `"${item}" is too large`);
  if (hi < lo) throw invalid(whole, `range "${item}" is reversed (${hiText} < ${loText})`);
  return { lo, hi, width: loText.length };
}

function parseExpression(whole: string, expr: string): Part[] {
  if (expr === '') throw invalid(whole, 'empty host name in list');
  const parts: Part[] = [];
  let i = 0;
  while (i < expr.length) {
    const open = expr.indexOf('[', i);
    const close = expr.indexOf(']', i);
    if (close !== -1 && (open === -1 || close < open)) throw invalid(whole, `"]" without "["`);
    if (open === -1) {
      parts.push(expr.slice(i));
      break;
    }
    if (open > i) parts.push(expr.slice(i, open));
    if (close === -1) throw invalid(whole, `"[" without "]"`);
    const body = expr.slice(open + 1, close);
    if (body.includes('[')) throw invalid(whole, 'nested brackets');
    if (body.trim() === '') throw invalid(whole, 'empty brackets');
    parts.push(body.split(',').map((item) => parseRun(whole, item)));
    i = close + 1;
  }
  return parts;
}

function countOf(parts: Part[]): number {
  let n = 1;
  for (const p of parts) {
    if (typeof p === 'string') continue;
    n *= p.reduce((sum, r) => sum + (r.hi - r.lo + 1), 0);
  }
  return n;
}

function expandParts(parts: Part[]): string[] {
  let names = [''];
  for (const p of parts) {
    if (typeof p === 'string') {
      names = names.map((n) => n + p);
      continue;
    }
    const suffixes: string[] = [];
    for (const r of p) {
      for (let v = r.lo; v <= r.hi; v++) suffixes.push(String(v).padStart(r.width, '0'));
    }
    names = names.flatMap((n) => suffixes.map((s) => n + s));
  }
  return names;
}

/**
 * Expands a Slurm-style hostlist (gpu[001-128], n[1-3,7], r[1-2]n[01-02], a,b[1-2]) into host names, in order.
 * Names are not validated as host names here: callers decide what a valid name is.
 */
export function expandHostlist(expr: string): string[] {
  const exprs = splitTopLevel(expr).map((e) => parseExpression(expr, e));
  // Counted before expanding so a typo such as [1-10000000] fails fast instead of allocating.
  const total = exprs.reduce((sum, parts) => sum + countOf(parts), 0);
  if (total > MAX_HOSTLIST_HOSTS) {
    throw invalid(expr, `expands to ${total} hosts, more than the limit of ${MAX_HOSTLIST_HOSTS}`);
  }
  return exprs.flatMap(expandParts);
}

/** True when the text uses range syntax, i.e. it may name more than one host. */
export function isHostlistRange(expr: string): boolean {
  return /[[\],]/.test(expr);
}

interface Numbered {
  prefix: string;
  digits: string;
  suffix: string;
}

/** Only the last run of digits varies, which covers gpu001 and r1n01 alike for display. */
function splitNumbered(name: string): Numbered | undefined {
  const m = /^(.*?)(\d+)(\D*)$/.exec(name);
  if (!m) return undefined;
  return { prefix: m[1]!, digits: m[2]!, suffix: m[3]! };
}

function formatRuns(values: number[], width: number): string[] {
  const sorted = [...new Set(values)].sort((a, b) => a - b);
  const items: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    const lo = String(sorted[i]).padStart(width, '0');
    const hi = String(sorted[j]).padStart(width, '0');
    items.push(i === j ? lo : `${lo}-${hi}`);
    i = j + 1;
  }
  return items;
}

/**
 * The reverse of expandHostlist, for display: ["gpu001", ..., "gpu004", "head01"] -> "gpu[001-004],head01".
 * expandHostlist(compressHostlist(names)) yields the same set of names (sorted, deduplicated).
 */
export function compressHostlist(names: Iterable<string>): string {
  const plain = new Set<string>();
  // Key: prefix, suffix and width (0 = written without leading zeros).
  const groups = new Map<string, { prefix: string; suffix: string; width: number; values: number[] }>();
  const numbered: Numbered[] = [];
  for (const name of new Set(names)) {
    const n = splitNumbered(name);
    if (n && n.digits.length <= 15) numbered.push(n);
    else plain.add(name);
  }
  const padded = (n: Numbered) => n.digits.length > 1 && n.digits.startsWith('0');
  const paddedWidths = new Set(numbered.filter(padded).map((n) => `${n.prefix}\0${n.suffix}\0${n.digits.length}`));
  for (const n of numbered) {
    // "10" fits a zero-padded width-2 group ([08-10]) as well as an unpadded one; prefer the padded group
    // so gpu08..gpu10 stays one range.
    const sameWidth = paddedWidths.has(`${n.prefix}\0${n.suffix}\0${n.digits.length}`);
    const width = padded(n) || sameWidth ? n.digits.length : 0;
    const key = `${n.prefix}\0${n.suffix}\0${width}`;
    let g = groups.get(key);
    if (!g) {
      g = { prefix: n.prefix, suffix: n.suffix, width, values: [] };
      groups.set(key, g);
    }
    g.values.push(Number(n.digits));
  }
  const out: Array<{ sortKey: string; text: string }> = [...plain].map((p) => ({ sortKey: p, text: p }));
  for (const g of groups.values()) {
    const items = formatRuns(g.values, g.width);
    const body = items.length === 1 && !items[0]!.includes('-') ? items[0]! : `[${items.join(',')}]`;
    const first = String(Math.min(...g.values)).padStart(g.width, '0');
    out.push({ sortKey: g.prefix + first + g.suffix, text: g.prefix + body + g.suffix });
  }
  return out
    .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0))
    .map((o) => o.text)
    .join(',');
}
