import nunjucks from 'nunjucks';
import { RackseedError, isRackseedError } from '../../model/errors.js';
import type { RenderContext } from '../types.js';
import type { SlsSource, SlsText } from '../source.js';
import { createSlsEnvironment, type SlsEnvironment } from './environment.js';
import { preprocessTemplate } from './preprocess.js';
import { lookupPath } from './lookup.js';

export interface SlsRenderer {
  /** Renders an SLS (or top.sls) read from the source to YAML text; `sls` is its dotted name ('' for top). */
  renderSls(text: SlsText, sls: string): string;
  /** Renders any template text with this node's context (file.managed `template: nunjucks`). */
  renderTemplate(text: string, file: string): string;
}

/**
 * The variables a template sees: `node`, `group`, `pillar`, `facts`, `cluster`, plus `sls`, `slspath` and `tpldir`
 * as in Salt. Each render gets its own deep copy, so nothing one SLS does to a list is seen by the next.
 * `pillar.get('a:b', default)` and `facts.get(...)` work as in Salt; a missing key without a default is an error.
 */
export function templateVariables(context: RenderContext, sls: string): Record<string, unknown> {
  const copy = structuredClone(context);
  const slspath = sls.split('.').slice(0, -1).join('/');
  return {
    node: copy.node,
    group: copy.group,
    pillar: withGet(copy.pillar, 'pillar'),
    facts: withGet(copy.facts as unknown as Record<string, unknown>, 'facts'),
    cluster: copy.cluster,
    sls,
    slspath,
    tpldir: slspath,
  };
}

function withGet(data: Record<string, unknown>, label: string): Record<string, unknown> {
  if (Object.hasOwn(data, 'get')) return data; // A key named "get" wins; the author meant the data.
  Object.defineProperty(data, 'get', {
    enumerable: false,
    value: (...args: unknown[]) => {
      const [path, ...rest] = args;
      if (typeof path !== 'string') throw new Error(`${label}.get: the key must be a string like 'a:b'`);
      const found = lookupPath(data, path);
      if (found.found) return found.value;
      if (rest.length > 0) return rest[0];
      throw new Error(`${label}.get('${path}'): no such key and no default given`);
    },
  });
  return data;
}

export function createSlsRenderer(source: SlsSource, context: RenderContext): SlsRenderer {
  const environment = createSlsEnvironment(source);
  const render = (text: string, path: string, file: string, sls: string): string => {
    environment.remember(path, file);
    environment.resetMark();
    try {
      const template = new nunjucks.Template(preprocessTemplate(text, file), environment.env, path, true);
      return template.render(templateVariables(context, sls));
    } catch (e) {
      throw asRenderError(e, environment, file, sls, text);
    }
  };
  return {
    renderSls: (text, sls) => render(text.text, text.path, text.file, sls),
    renderTemplate: (text, file) => render(text, file, file, ''),
  };
}

/** One-off render of template text (file.managed `template: nunjucks`) with a node's context over the state tree. */
export function renderTemplateText(text: string, file: string, context: RenderContext, source: SlsSource): string {
  return createSlsRenderer(source, context).renderTemplate(text, file);
}

/**
 * nunjucks errors read "(path) [Line 3, Column 5]\n  Error: message", often without a line (errors inside filters)
 * and sometimes one line early (errors inside calls). The preprocessor's line marks are exact, so they win unless
 * nunjucks names a different template (a syntax error in an imported file, found before any of its marks ran).
 */
function asRenderError(e: unknown, environment: SlsEnvironment, file: string, sls: string, text: string): RackseedError {
  const raw = e instanceof Error ? e.message : String(e);
  const fromLoader = environment.loaderError();
  const ours = findRackseedError(e) ?? (fromLoader && raw.includes(fromLoader.message) ? fromLoader : undefined);
  if (ours && ours.code === 'SLS_RENDER') return ours;
  const locations = [...raw.matchAll(/\(([^()\n]*)\)(?: \[Line (\d+)(?:, Column \d+)?\])?(?=\n)/g)];
  const innermost = locations.filter((m) => m[2] !== undefined).at(-1) ?? locations.at(-1);
  const reported = innermost?.[1] ? { file: environment.fileOf(innermost[1]), line: innermost[2] ? Number(innermost[2]) : undefined } : undefined;
  const mark = environment.lastMark();
  // Inside a macro of an imported file, nunjucks names the calling template (with the macro's line number), while the
  // last mark was set by the macro's own line as it ran: the mark is the place.
  const inImportedMacro = mark !== undefined && mark.file !== file && reported?.file === file;
  let where: { file: string; line: number | undefined } =
    mark && (inImportedMacro || !reported || reported.line === undefined || reported.file === mark.file) ? mark : reported ?? { file, line: undefined };
  // Syntax errors at the end of the text ("expected endif, got end of file") come without a line.
  if (where.line === undefined && where.file === file && /end of file/.test(raw)) where = { file, line: text.split('\n').length };
  const message = (ours?.message ?? raw.replace(/\([^()\n]*\)( \[Line [^\]]*\])?(?=\n)/g, '').replace(/Template render error:/g, '').replace(/\b\w*Error: /g, ''))
    .replace(/\s+/g, ' ')
    .trim();
  const at = where.line === undefined ? where.file : `${where.file}:${where.line}`;
  return new RackseedError('SLS_RENDER', `${at}: ${message}`, { file: where.file, line: where.line, sls, ...(ours ? { innerCode: ours.code } : {}) }, { cause: e });
}

function findRackseedError(e: unknown): RackseedError | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 6; cur = (cur as { cause?: unknown }).cause, depth++) {
    if (isRackseedError(cur)) return cur;
  }
  return undefined;
}
