import { readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { RackseedError } from '../model/errors.js';
import { normalizeTreePath, readSourceRef, slsCandidatePaths, slsNameOfPath, type SlsSource, type SlsText } from './source.js';

/**
 * The state tree on disk: several roots, the first holding a path wins (pass the operator's directory before the
 * built-in `states/`). Files are read lazily on each call, so an edited SLS is seen by the next compile.
 * The only part of the state engine that touches the file system.
 */
export function createFsSource(roots: readonly string[]): SlsSource {
  const realRoots = roots.flatMap((root) => {
    try {
      return [{ root, real: realpathSync(root) }];
    } catch {
      return []; // An operator directory that does not exist yet is simply empty.
    }
  });

  const readIn = (real: string, treePath: string): SlsText | undefined => {
    const file = join(real, ...treePath.split('/'));
    let resolved: string;
    try {
      resolved = realpathSync(file);
      if (!statSync(resolved).isFile()) return undefined;
    } catch {
      return undefined;
    }
    // A symlink inside the tree must not lead out of it (secrets elsewhere on the server).
    if (resolved !== real && !resolved.startsWith(real + sep)) {
      throw new RackseedError('SLS_INVALID', `${file}: resolves to ${resolved}, outside the state tree ${real}`, { file, resolved, root: real });
    }
    return { path: treePath, file, text: readFileSync(resolved, 'utf8') };
  };

  return {
    read(sls) {
      const candidates = slsCandidatePaths(sls);
      for (const { real } of realRoots) {
        for (const candidate of candidates) {
          const found = readIn(real, candidate);
          if (found) return found;
        }
      }
      return undefined;
    },
    readTemplate(path) {
      const clean = normalizeTreePath(path);
      for (const { real } of realRoots) {
        const found = readIn(real, clean);
        if (found) return found;
      }
      return undefined;
    },
    list() {
      const names = new Set<string>();
      for (const { real } of realRoots) {
        for (const path of walk(real, '')) {
          const name = slsNameOfPath(path);
          if (name !== undefined && name !== 'top') names.add(name);
        }
      }
      return [...names].sort();
    },
  };
}

function walk(dir: string, prefix: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...walk(join(dir, entry.name), rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

/** The same source as a class, with `readFile` for module `source:` references (ModuleContext.readSource). */
export class FsSlsSource implements SlsSource {
  private readonly inner: SlsSource;

  constructor(roots: readonly string[]) {
    this.inner = createFsSource(roots);
  }

  read(sls: string): SlsText | undefined {
    return this.inner.read(sls);
  }

  readTemplate(path: string): SlsText | undefined {
    return this.inner.readTemplate(path);
  }

  list(): string[] {
    return this.inner.list();
  }

  /** `rackseed://slurm/slurm.conf.njk` -> its text and file. */
  readFile(ref: string): { text: string; file: string } {
    return readSourceRef(this.inner, ref);
  }
}
