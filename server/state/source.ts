import { RackseedError } from '../model/errors.js';

/**
 * Where SLS files and the templates they import come from. The compiler only ever talks to this interface, so it
 * runs the same over the file-backed tree (source-fs.ts) and an in-memory map (tests, API previews).
 */
export interface SlsText {
  /** Path inside the state tree, '/'-separated, no leading slash: 'slurm/compute.sls'. Used as the template name. */
  path: string;
  /** The file as the operator sees it (for errors): '/etc/rackseed/states/slurm/compute.sls'. */
  file: string;
  text: string;
}

export interface SlsSource {
  /** The SLS named `a.b`: `a/b.sls`, else `a/b/init.sls` (Salt's rule); undefined when neither exists. */
  read(sls: string): SlsText | undefined;
  /** Any file of the tree by its tree path ('slurm/macros.njk'), for `{% import %}`/`{% include %}` and `source:`. */
  readTemplate(path: string): SlsText | undefined;
  /** Every SLS name in the tree, sorted ('top' excluded). */
  list(): string[];
}

const SLS_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_-]*$/;

export const SLS_NAME_RULE = 'dotted names of letters, digits, "_" and "-"';

/** Whether `sls` is a dotted name of plain segments (no empty segment, so no '..' and no '/'). */
export function isSlsName(sls: string): boolean {
  return sls.split('.').every((segment) => SLS_SEGMENT.test(segment));
}

/** Throws unless `sls` is a dotted name of plain segments (no empty segment, so no '..' and no '/'). */
export function assertSlsName(sls: string): void {
  if (!isSlsName(sls)) throw new RackseedError('SLS_INVALID', `"${sls}" is not a valid SLS name (${SLS_NAME_RULE})`, { sls });
}

/** The tree paths an SLS name may live at, in the order Salt tries them. */
export function slsCandidatePaths(sls: string): [string, string] {
  assertSlsName(sls);
  const base = sls.split('.').join('/');
  return [`${base}.sls`, `${base}/init.sls`];
}

/** True when the SLS text came from an `init.sls` (relative includes then resolve against the SLS itself). */
export function isInitFile(path: string): boolean {
  return path === 'init.sls' || path.endsWith('/init.sls');
}

/** 'a/b.sls' -> 'a.b', 'a/init.sls' -> 'a'; undefined for files that are not SLS. */
export function slsNameOfPath(path: string): string | undefined {
  if (!path.endsWith('.sls')) return undefined;
  const withoutExt = path.slice(0, -'.sls'.length);
  const name = (withoutExt.endsWith('/init') ? withoutExt.slice(0, -'/init'.length) : withoutExt).split('/').join('.');
  return name === '' || name === 'init' ? undefined : name;
}

/**
 * Normalises a tree path and refuses anything that could leave the tree: absolute paths, '..' segments, backslashes
 * and NUL. Returns the cleaned path ('./a//b' -> 'a/b').
 */
export function normalizeTreePath(path: string): string {
  if (path.includes('\0') || path.includes('\\') || path.startsWith('/') || /^[A-Za-z]:/.test(path)) {
    throw new RackseedError('SLS_INVALID', `"${path}" is not a path inside the state tree`, { path });
  }
  const segments = path.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0 || segments.some((s) => s === '..')) {
    throw new RackseedError('SLS_INVALID', `"${path}" is not a path inside the state tree (no "..", no absolute paths)`, { path });
  }
  return segments.join('/');
}

/** Resolves a relative template name ('./x.njk', '../y.njk') against the template that imports it. */
export function resolveRelativeTreePath(fromPath: string, relative: string): string {
  const dir = fromPath.split('/').slice(0, -1);
  for (const segment of relative.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (dir.length === 0) throw new RackseedError('SLS_INVALID', `"${relative}" (from ${fromPath}) leaves the state tree`, { path: relative, from: fromPath });
      dir.pop();
    } else dir.push(segment);
  }
  return normalizeTreePath(dir.join('/'));
}

/**
 * An in-memory state tree: tree path -> text. Several maps act like several roots, the first holding a path wins
 * (operator tree before the built-in one). `label` prefixes the file names shown in errors.
 */
export function createMemorySource(...layers: Array<{ files: Readonly<Record<string, string>>; label?: string }>): SlsSource {
  const normalized = layers.map((layer) => ({
    label: layer.label,
    files: new Map(Object.entries(layer.files).map(([p, text]) => [normalizeTreePath(p), text] as const)),
  }));
  const readTemplate = (path: string): SlsText | undefined => {
    const clean = normalizeTreePath(path);
    for (const layer of normalized) {
      const text = layer.files.get(clean);
      if (text !== undefined) return { path: clean, file: layer.label ? `${layer.label}/${clean}` : clean, text };
    }
    return undefined;
  };
  return {
    read(sls) {
      // Salt's rule is per root: a root holding either form shadows the later roots.
      const candidates = slsCandidatePaths(sls);
      for (const layer of normalized) {
        for (const candidate of candidates) {
          const text = layer.files.get(candidate);
          if (text !== undefined) return { path: candidate, file: layer.label ? `${layer.label}/${candidate}` : candidate, text };
        }
      }
      return undefined;
    },
    readTemplate,
    list() {
      const names = new Set<string>();
      for (const layer of normalized) for (const p of layer.files.keys()) {
        const name = slsNameOfPath(p);
        if (name !== undefined && name !== 'top') names.add(name);
      }
      return [...names].sort();
    },
  };
}

/**
 * Reads a module's `source:` (`rackseed://slurm/slurm.conf.njk`; `salt://` is accepted for copied Salt states)
 * from the state tree. A missing file is SLS_NOT_FOUND naming the reference.
 */
export function readSourceRef(source: SlsSource, ref: string): { text: string; file: string } {
  const m = /^(?:rackseed|salt):\/\/(.+)$/.exec(ref);
  if (!m) throw new RackseedError('SLS_INVALID', `"${ref}" is not a state tree reference (expected rackseed://path/in/the/tree)`, { ref });
  const found = source.readTemplate(m[1]!);
  if (!found) throw new RackseedError('SLS_NOT_FOUND', `${ref}: no such file in the state tree`, { ref });
  return { text: found.text, file: found.file };
}
