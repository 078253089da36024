import { LineCounter, parseDocument, visit, type Alias, type Document } from 'yaml';
import { RackseedError, type ErrorCode } from '../model/errors.js';
import { SourceLocator } from './source-locator.js';

/**
 * Parses a hand-edited YAML file (config, inventory) keeping source positions, so later validation errors can
 * name the line. A syntax error is thrown at once with its line.
 */
export function parseYamlDocument(text: string, file: string, code: ErrorCode): { doc: Document; where: SourceLocator } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, keepSourceTokens: true, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const line = lines.linePos(syntax.pos[0]).line;
    const why = (syntax.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    throw new RackseedError(code, `${file}:${line}: YAML syntax error: ${why}`, { file, line });
  }
  const dangling = danglingAlias(doc);
  if (dangling) {
    const line = lines.linePos(dangling.range?.[0] ?? 0).line;
    throw new RackseedError(code, `${file}:${line}: ${danglingAliasProblem(dangling)}`, { file, line });
  }
  return { doc, where: new SourceLocator(file, doc, lines) };
}

/**
 * The first alias whose anchor is not defined before it: usually an unquoted value that starts with `*` (`rack: *r1`).
 * The YAML library throws a bare ReferenceError for it only when the value is read, with no file or line.
 */
export function danglingAlias(doc: Document): Alias | undefined {
  return findAlias(doc, (node) => node.resolve(doc) === undefined);
}

/** The first alias of the document that `test` accepts (every alias: where an alias bomb starts). */
export function findAlias(doc: Document, test: (alias: Alias) => boolean = () => true): Alias | undefined {
  let found: Alias | undefined;
  visit(doc, {
    Alias(_key, node) {
      if (!test(node)) return undefined;
      found = node;
      return visit.BREAK;
    },
  });
  return found;
}

export const danglingAliasProblem = (alias: Alias): string =>
  `"*${alias.source}" refers to an anchor (&${alias.source}) that is not defined above it: quote a value that starts with *`;

/**
 * The document as plain data. The library refuses aliases that expand too far (a "billion laughs" bomb) with a bare
 * ReferenceError: here it names the file.
 */
export function yamlToJs(doc: Document, file: string, code: ErrorCode): unknown {
  try {
    return doc.toJS();
  } catch (cause) {
    throw new RackseedError(code, `${file}: YAML aliases cannot be expanded (${(cause as Error).message})`, { file }, { cause });
  }
}
