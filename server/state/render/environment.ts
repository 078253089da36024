import nunjucks from 'nunjucks';
import { RackseedError } from '../../model/errors.js';
import { normalizeTreePath, resolveRelativeTreePath, type SlsSource } from '../source.js';
import { FILTERS, TESTS, outputFilter } from './filters.js';
import { LINE_MARK, OUTPUT_FILTER, preprocessTemplate } from './preprocess.js';
import { guardNunjucks } from '../../util/nunjucks-guard.js';

// No template reaches a constructor or a prototype (and through them, JavaScript in this process).
guardNunjucks();

// Kept here too for callers that look for it next to the environment; it lives in render.ts.

export interface SlsEnvironment {
  env: nunjucks.Environment;
  /** Tree path -> file as the operator sees it, for every template loaded so far (error messages). */
  fileOf(path: string): string;
  /** Registers a template rendered from text (not through the loader) so errors name its file. */
  remember(path: string, file: string): void;
  /** The last construct that started evaluating (file and line), for errors nunjucks reports without a line. */
  lastMark(): { file: string; line: number } | undefined;
  resetMark(): void;
  /** The last error the loader threw: nunjucks keeps only its message when it passes through an include. */
  loaderError(): RackseedError | undefined;
}

/**
 * A nunjucks Environment over the state tree only: `{% import %}`/`{% include %}` read through the SlsSource
 * (relative names like './macros.njk' resolve against the importing template), never the server's file system.
 * Autoescape off (this is YAML, not HTML), undefined output is an error, Jinja-only syntax is rejected.
 */
export function createSlsEnvironment(source: SlsSource): SlsEnvironment {
  const files = new Map<string, string>();
  let lastLoaderError: RackseedError | undefined;
  const loader = {
    getSource(name: string) {
      try {
        const path = normalizeTreePath(name);
        const found = source.readTemplate(path);
        if (!found) throw new RackseedError('SLS_NOT_FOUND', `template "${path}" is not in the state tree`, { path });
        files.set(path, found.file);
        return { src: preprocessTemplate(found.text, found.file), path, noCache: false };
      } catch (e) {
        if (e instanceof RackseedError) lastLoaderError = e;
        throw e;
      }
    },
    isRelative: (name: string) => name.startsWith('./') || name.startsWith('../'),
    resolve: (from: string, to: string) => resolveRelativeTreePath(from, to),
  };
  const env = new nunjucks.Environment(loader as unknown as nunjucks.ILoader, { autoescape: false, throwOnUndefined: true });
  for (const [name, filter] of Object.entries(FILTERS)) env.addFilter(name, filter as (...args: unknown[]) => unknown);
  // addTest exists in nunjucks 3 but not in @types/nunjucks.
  const withTests = env as unknown as { addTest(name: string, test: (...args: unknown[]) => boolean): void };
  for (const [name, test] of Object.entries(TESTS)) withTests.addTest(name, test as (...args: unknown[]) => boolean);
  env.addFilter(OUTPUT_FILTER, outputFilter);
  // Salt authors write True/False/None; nunjucks only knows true/false/none and would look these up as variables.
  env.addGlobal('True', true);
  env.addGlobal('False', false);
  env.addGlobal('None', null);
  let mark: { file: string; line: number } | undefined;
  env.addGlobal(LINE_MARK, (line: number, file: string) => {
    mark = { file, line };
    return '';
  });
  return {
    env,
    fileOf: (path) => files.get(path) ?? path,
    remember: (path, file) => void files.set(path, file),
    lastMark: () => mark,
    resetMark: () => {
      mark = undefined;
      lastLoaderError = undefined;
    },
    loaderError: () => lastLoaderError,
  };
}
