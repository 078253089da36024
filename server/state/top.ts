import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { danglingAlias, danglingAliasProblem } from '../util/yaml-document.js';
import { RackseedError } from '../model/errors.js';
import { renderedLineMapper } from './parse/lines.js';
import type { NodeFacts, SourceRef } from './types.js';

/**
 * top.sls: which SLS each node gets. Only the `base` environment exists. Targets are host-name globs unless the
 * list says otherwise with `- match: group|role|fact|pillar|label|list|glob`:
 *
 *   base:
 *     '*':            [base]
 *     'gpu-*':        [nvidia]
 *     compute:        [{match: group}, slurm.compute]
 *     'slurm-*':      [{match: role}, slurm.client]          # glob on each of the node's roles
 *     'osFamily:debian': [{match: fact}, debian.apt]        # path:glob, nested with ':' (gpus:model:*H100*)
 *     'n1,n2':        [{match: list}, debug]
 */
export const TOP_MATCHERS = ['glob', 'group', 'role', 'fact', 'pillar', 'label', 'list'] as const;
export type TopMatcher = (typeof TOP_MATCHERS)[number];

export interface TopEntry {
  target: string;
  matcher: TopMatcher;
  sls: Array<{ sls: string; source: SourceRef }>;
  source: SourceRef;
}

export interface TopFile {
  file: string;
  entries: TopEntry[];
}

/** What a target is matched against: only the node's own data. */
export interface TopTarget {
  name: string;
  group: string;
  roles: readonly string[];
  labels: Readonly<Record<string, string>>;
  facts: NodeFacts;
  pillar: Record<string, unknown>;
}

export function parseTop(rendered: string, file: string, template?: string): TopFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(rendered, { lineCounter, uniqueKeys: true });
  const mapLine = template === undefined ? (l: number) => l : renderedLineMapper(template, rendered);
  const lineOf = (node: unknown): number => {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? mapLine(lineCounter.linePos(range[0]).line) : 0;
  };
  const invalid = (line: number, problem: string): never => {
    throw new RackseedError('SLS_INVALID', `${file}:${line}: ${problem}`, { file, line });
  };
  const error = doc.errors[0];
  if (error) invalid(mapLine(lineCounter.linePos(error.pos[0]).line), `is not valid YAML: ${error.message.split('\n')[0]}`);
  const dangling = danglingAlias(doc);
  if (dangling) invalid(lineOf(dangling), danglingAliasProblem(dangling));
  const entries: TopEntry[] = [];
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return { file, entries };
  if (!isMap(root)) return invalid(lineOf(root), 'top.sls must be a mapping with the environment "base"');
  for (const envPair of root.items) {
    const env = isScalar(envPair.key) ? String(envPair.key.value) : '';
    if (env !== 'base') invalid(lineOf(envPair.key), `environment "${env}": only "base" is supported`);
    const targets = envPair.value;
    if (targets === null || (isScalar(targets) && targets.value === null)) continue;
    if (!isMap(targets)) return invalid(lineOf(envPair.key), 'base: must be a mapping of targets to SLS lists');
    for (const targetPair of targets.items) {
      const target = isScalar(targetPair.key) ? String(targetPair.key.value) : invalid(lineOf(targetPair.key), 'targets must be strings');
      const targetLine = lineOf(targetPair.key);
      if (!isSeq(targetPair.value)) return invalid(targetLine, `target "${target}": must be a list of SLS names`);
      let matcher: TopMatcher = 'glob';
      const sls: TopEntry['sls'] = [];
      for (const item of targetPair.value.items) {
        const line = lineOf(item) || targetLine;
        let value: unknown;
        try {
          value = (item as { toJS?: (d: unknown) => unknown })?.toJS?.(doc) ?? null;
        } catch (err) {
          // Aliases that expand too far (a "billion laughs"): the library throws a bare ReferenceError.
          return invalid(line, `target "${target}": YAML aliases cannot be expanded (${(err as Error).message})`);
        }
        if (typeof value === 'string' && value !== '') sls.push({ sls: value, source: { file, line } });
        else if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 1 && 'match' in value) {
          const m = (value as { match: unknown }).match;
          if (!(TOP_MATCHERS as readonly unknown[]).includes(m)) invalid(line, `target "${target}": unknown match "${String(m)}" (expected one of ${TOP_MATCHERS.join(', ')})`);
          matcher = m as TopMatcher;
        } else invalid(line, `target "${target}": items must be SLS names or "- match: KIND", got ${JSON.stringify(value)}`);
      }
      if (matcher === 'fact' || matcher === 'pillar' || matcher === 'label') {
        if (!target.includes(':')) invalid(targetLine, `target "${target}": match ${matcher} needs "key:glob" (e.g. osFamily:debian)`);
      }
      entries.push({ target, matcher, sls, source: { file, line: targetLine } });
    }
  }
  return { file, entries };
}

export function matchesTarget(entry: Pick<TopEntry, 'target' | 'matcher'>, node: TopTarget): boolean {
  const { target } = entry;
  switch (entry.matcher) {
    case 'glob':
      return globMatch(target, node.name);
    case 'list':
      return target.split(',').map((s) => s.trim()).includes(node.name);
    case 'group':
      return globMatch(target, node.group);
    case 'role':
      return node.roles.some((role) => globMatch(target, role));
    case 'fact':
      return pathGlobMatch(node.facts, target);
    case 'pillar':
      return pathGlobMatch(node.pillar, target);
    case 'label':
      return pathGlobMatch(node.labels, target);
  }
}

/**
 * `a:b:glob`: walks mappings by key and spreads over lists (so `gpus:model:*H100*` matches if any GPU does), then
 * glob-matches the scalar(s) found. `gpus:*` matches when the list has at least one entry.
 */
function pathGlobMatch(data: unknown, expression: string): boolean {
  const parts = expression.split(':');
  const pattern = parts.pop()!;
  let values: unknown[] = [data];
  for (const key of parts) {
    values = values
      .flatMap((v) => (Array.isArray(v) ? v : [v]))
      .flatMap((v) => (v !== null && typeof v === 'object' && Object.hasOwn(v, key) ? [(v as Record<string, unknown>)[key]] : []));
  }
  return values
    .flatMap((v) => (Array.isArray(v) ? v : [v]))
    .some((v) => {
      if (v !== null && typeof v === 'object') return pattern === '*';
      // YAML and Salt authors write booleans as True/true/yes-less forms; compare them case-insensitively.
      if (typeof v === 'boolean') return pattern === '*' || pattern.toLowerCase() === String(v);
      return v !== undefined && globMatch(pattern, String(v));
    });
}

/** The node's SLS list in top.sls order, each once (its first mention wins), with where it was named. */
export function slsForNode(top: TopFile, node: TopTarget): Array<{ sls: string; source: SourceRef }> {
  const seen = new Set<string>();
  const out: Array<{ sls: string; source: SourceRef }> = [];
  for (const entry of top.entries) {
    if (!matchesTarget(entry, node)) continue;
    for (const item of entry.sls) {
      if (seen.has(item.sls)) continue;
      seen.add(item.sls);
      out.push(item);
    }
  }
  return out;
}

/** fnmatch-style globs as Salt uses them for targets: `*`, `?`, `[abc]`, `[!a-z]`; the whole string must match. */
function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) source += '\\[';
      else {
        let set = glob.slice(i + 1, close);
        if (set.startsWith('!')) set = `^${set.slice(1)}`;
        source += `[${set.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else source += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

export function globMatch(glob: string, value: string): boolean {
  return globToRegExp(glob).test(value);
}
