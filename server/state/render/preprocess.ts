import { RackseedError } from '../../model/errors.js';

/**
 * Runs over template text before nunjucks sees it, for three reasons:
 *
 * 1. Jinja constructs nunjucks parses differently and then renders WRONG without complaint (a loop filter renders the
 *    else branch, `'%s' % x` gives NaN, `.replace()` replaces only the first match): they are rejected here with the
 *    file, the line and what to write instead.
 * 2. `{{ expr }}` prints through OUTPUT_FILTER, so printing a list or mapping (nunjucks prints `a,b` and
 *    `[object Object]`, Jinja a Python repr) or an undefined value is an error naming the expression.
 * 3. nunjucks reports no line for an error thrown inside a filter, so each output and each `if`/`elif`/`for`/`set`
 *    first calls LINE_MARK with its file and line; the renderer names the last mark when nunjucks names nothing.
 *
 * The rewrite never adds or removes a line, so nunjucks' own line numbers stay right.
 */
export const OUTPUT_FILTER = '__rackseed_output';
export const LINE_MARK = '__rackseed_line';

interface Construct {
  kind: 'tag' | 'output';
  /** Offsets of the whole construct ('{{'..'}}'). */
  start: number;
  end: number;
  /** Offsets of the expression between the delimiters and whitespace-control dashes. */
  innerStart: number;
  innerEnd: number;
  line: number;
}

interface Rule {
  applies: (kind: Construct['kind']) => boolean;
  pattern: RegExp;
  problem: string;
  instead: string;
}

const ANY = (): boolean => true;

/** Checked against the construct with its string literals masked (`"..."` becomes `__STR__`). */
const RULES: Rule[] = [
  {
    applies: (k) => k === 'tag',
    pattern: /^do\b/,
    problem: '`{% do %}` does not exist in nunjucks',
    instead: 'build the value with `{% set %}` (a set inside a loop updates a variable set before the loop)',
  },
  {
    applies: ANY,
    pattern: /(?<![.\w])namespace\s*\(/,
    problem: '`namespace()` does not exist in nunjucks',
    instead: '`{% set count = 0 %}` before the loop and `{% set count = count + 1 %}` inside it (nunjucks updates the outer variable)',
  },
  {
    applies: ANY,
    pattern: /__STR__\s*%(?!\})/,
    problem: 'Python `%` string formatting renders NaN in nunjucks',
    instead: "`'%s-%d'|format(a, b)` or `a ~ '-' ~ b`",
  },
  {
    applies: ANY,
    pattern: /\.(items|keys|values|iteritems|iterkeys|itervalues)\s*\(/,
    problem: 'nunjucks cannot call Python dict methods',
    instead: '`{% for k, v in d %}`, or the filters `d|items`, `d|keys`, `d|values`',
  },
  {
    applies: ANY,
    pattern: /\.replace\s*\(/,
    problem: '`.replace()` is JavaScript\'s here and replaces only the first match',
    instead: "`x|replace('old', 'new')` or `x|regex_replace('pattern', 'new')`",
  },
  {
    applies: ANY,
    pattern: /\.split\s*\(\s*\)/,
    problem: '`.split()` without a separator does not split on whitespace in nunjucks',
    instead: '`x|split` (Python semantics) or `x.split(" ")`',
  },
  {
    applies: ANY,
    pattern: /\.(upper|lower|strip|lstrip|rstrip|title|capitalize|startswith|endswith|format|join)\s*\(/,
    problem: 'Python string methods do not exist in nunjucks',
    instead: 'the filters `|upper`, `|lower`, `|trim`, `|title`, `|capitalize`, `|startswith(s)`, `|endswith(s)`, `|format(...)`, `xs|join(sep)`',
  },
];

/**
 * Salt's render-time globals. A template that binds one of these names itself (`{% set opts = ... %}`, a loop
 * variable, a macro parameter, an import) means its own variable, which is allowed.
 */
const SALT_GLOBAL = /(?<![.\w])(salt|grains|opts|__salt__|__grains__|__pillar__|__opts__)\b(?!\s*=[^=])/g;
const SALT_GLOBAL_PROBLEM = 'Salt execution modules, grains and opts are not available when rendering';
const SALT_GLOBAL_INSTEAD = '`facts` (osFamily, osRelease, cpus, memoryMiB, gpus, nics, ...), `pillar`, `node`, `group`, `cluster`';

/** Checks and rewrites one template. `file` is used in error messages only. */
export function preprocessTemplate(text: string, file: string): string {
  const constructs = scan(text, file);
  const bound = boundNames(constructs.map((c) => text.slice(c.innerStart, c.innerEnd)));
  let out = '';
  let copied = 0;
  for (const construct of constructs) {
    const inner = text.slice(construct.innerStart, construct.innerEnd);
    check(construct, inner, file, bound);
    const rewritten = rewrite(construct, inner, file);
    if (rewritten !== undefined) {
      out += text.slice(copied, construct.innerStart) + rewritten;
      copied = construct.innerEnd;
    }
  }
  return out + text.slice(copied);
}

/** A nunjucks string literal (single-quoted; newlines flattened so no line moves). */
function literal(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/[\r\n]+/g, ' ')}'`;
}

const MARKED_TAG = /^(\s*)(if|elif|for\s+[\w\s,]+?\s+in|set\s+[\w\s,]+?\s*=(?!=))(\s)([\s\S]*)$/;

const LOADING_TAG = /^(\s*)(include|import|from)(\s+)('[^'\\]*'|"[^"\\]*")([\s\S]*)$/;

function rewrite(construct: Construct, inner: string, file: string): string | undefined {
  const mark = `${LINE_MARK}(${construct.line}, ${literal(file)})`;
  if (construct.kind === 'output') {
    if (inner.trim() === '') return undefined;
    return ` ${mark} ~ ((${inner}) | ${OUTPUT_FILTER}(${literal(inner.trim())})) `;
  }
  const load = LOADING_TAG.exec(inner);
  if (load) return `${load[1]}${load[2]}${load[3]}(${mark} or ${load[4]})${load[5]}`;
  const tag = MARKED_TAG.exec(inner);
  if (!tag) return undefined;
  return `${tag[1]}${tag[2]}${tag[3]}${mark} or (${tag[4]})`;
}

/** Names the template binds itself: set targets, loop variables, macro and call-block parameters, imports. */
function boundNames(inners: string[]): Set<string> {
  const names = new Set<string>();
  const addAll = (list: string) => {
    for (const part of list.split(',')) {
      const name = /^\s*(\w+)/.exec(part.replace(/^\s*\w+\s+as\s+/, ''));
      if (name) names.add(name[1]!);
    }
  };
  for (const inner of inners) {
    const tag = maskStrings(inner).trim();
    let m: RegExpExecArray | null;
    if ((m = /^set\s+([\w\s,]+?)\s*(?:=|$)/.exec(tag))) addAll(m[1]!);
    else if ((m = /^for\s+([\w\s,]+?)\s+in\s/.exec(tag))) addAll(m[1]!);
    else if ((m = /^(?:macro\s+\w+|call)\s*\(([^)]*)\)/.exec(tag))) addAll(m[1]!.split(',').map((p) => p.split('=')[0]).join(','));
    else if ((m = /^import\s+\S+\s+as\s+(\w+)/.exec(tag))) names.add(m[1]!);
    else if ((m = /^from\s+\S+\s+import\s+(.+?)(?:\s+(?:with|without)\s+context)?$/.exec(tag))) addAll(m[1]!);
  }
  return names;
}

function check(construct: Construct, inner: string, file: string, bound: Set<string>): void {
  const masked = maskStrings(inner);
  const trimmed = masked.trimStart();
  const lineAt = (index: number): number => construct.line + countNewlines(masked, 0, index + (masked.length - trimmed.length));
  if (construct.kind === 'tag') {
    const loopFilter = findLoopFilter(trimmed);
    if (loopFilter !== undefined) {
      fail(file, lineAt(loopFilter), 'a loop filter (`{% for x in xs if cond %}`) renders the else branch in nunjucks', '`{% for x in xs %}{% if cond %}...{% endif %}{% endfor %}`, or filter first: `xs|selectattr(...)`, `xs|select(...)`');
    }
  }
  for (const rule of RULES) {
    if (!rule.applies(construct.kind)) continue;
    const match = rule.pattern.exec(trimmed);
    if (match) fail(file, lineAt(match.index), rule.problem, rule.instead);
  }
  for (const match of trimmed.matchAll(SALT_GLOBAL)) {
    if (!bound.has(match[1]!)) fail(file, lineAt(match.index), SALT_GLOBAL_PROBLEM, SALT_GLOBAL_INSTEAD);
  }
}

/** Index of the `if` of `for x in xs if cond`, if any (an `if` inside brackets is an inline if-expression). */
function findLoopFilter(tag: string): number | undefined {
  if (!/^for\b/.test(tag)) return undefined;
  const inMatch = /\sin\s/.exec(tag);
  if (!inMatch) return undefined;
  let depth = 0;
  for (let i = inMatch.index + inMatch[0].length; i < tag.length; i++) {
    const c = tag[i]!;
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (depth === 0 && tag.startsWith('if', i) && /\s/.test(tag[i - 1] ?? '') && /[\s(]/.test(tag[i + 2] ?? '')) return i;
  }
  return undefined;
}

function fail(file: string, line: number, problem: string, instead: string): never {
  throw new RackseedError('SLS_RENDER', `${file}:${line}: ${problem}; write ${instead} instead`, { file, line, problem, instead });
}

/** Finds `{{ }}`, `{% %}` and `{# #}`, skipping `{% raw %}`/`{% verbatim %}` bodies; returns outputs and tags. */
function scan(text: string, file: string): Construct[] {
  const found: Construct[] = [];
  let i = 0;
  let line = 1;
  let rawEnd: RegExp | undefined;
  while (i < text.length) {
    const open = text.indexOf('{', i);
    if (open < 0) break;
    line += countNewlines(text, i, open);
    i = open;
    const next = text[open + 1];
    if (rawEnd) {
      if (next === '%') {
        const close = text.indexOf('%}', open + 2);
        if (close >= 0 && rawEnd.test(text.slice(open + 2, close))) rawEnd = undefined;
      }
      i = open + 1;
      continue;
    }
    if (next === '#') {
      const close = text.indexOf('#}', open + 2);
      if (close < 0) fail(file, line, 'a comment `{#` is never closed', 'a closing `#}`');
      line += countNewlines(text, open, close + 2);
      i = close + 2;
      continue;
    }
    if (next !== '{' && next !== '%') {
      i = open + 1;
      continue;
    }
    const closer = next === '{' ? '}}' : '%}';
    const close = findCloser(text, open + 2, closer);
    if (close < 0) fail(file, line, `\`${text.slice(open, open + 2)}\` is never closed`, `a closing \`${closer}\``);
    let innerStart = open + 2;
    let innerEnd = close;
    if (text[innerStart] === '-') innerStart++;
    if (innerEnd > innerStart && text[innerEnd - 1] === '-') innerEnd--;
    const construct: Construct = { kind: next === '{' ? 'output' : 'tag', start: open, end: close + 2, innerStart, innerEnd, line };
    found.push(construct);
    if (construct.kind === 'tag') {
      const name = /^\s*(raw|verbatim)\s*$/.exec(text.slice(innerStart, innerEnd));
      if (name) rawEnd = new RegExp(`^-?\\s*end${name[1]}\\s*-?$`);
    }
    line += countNewlines(text, open, close + 2);
    i = close + 2;
  }
  return found;
}

/** The closing delimiter, skipping string literals (a `}}` inside quotes does not close). */
function findCloser(text: string, from: number, closer: string): number {
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'") {
      i = skipString(text, i);
      continue;
    }
    if (text.startsWith(closer, i)) return i;
  }
  return -1;
}

function skipString(text: string, openQuote: number): number {
  const quote = text[openQuote];
  for (let i = openQuote + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === quote) return i;
  }
  return text.length;
}

/** Replaces each string literal with `__STR__`, keeping newlines so line arithmetic still holds. */
function maskStrings(code: string): string {
  let out = '';
  for (let i = 0; i < code.length; i++) {
    const c = code[i]!;
    if (c === '"' || c === "'") {
      const end = skipString(code, i);
      out += '__STR__' + '\n'.repeat(countNewlines(code, i, end + 1));
      i = end;
    } else out += c;
  }
  return out;
}

function countNewlines(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to && i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}
