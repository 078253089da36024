import { LineCounter, parseDocument, type Document } from 'yaml';
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
  return { doc, where: new SourceLocator(file, doc, lines) };
}
