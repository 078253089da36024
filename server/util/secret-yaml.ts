import { LineCounter, parseDocument, visit, type Node } from 'yaml';
import { RackseedError, type ErrorCode } from '../model/errors.js';

const NOT_SHOWN = 'the text is not shown: this file holds secrets';

/**
 * Parses a YAML file that holds secrets (pillar, BMC passwords) so that no part of it reaches an error: the YAML
 * library's messages quote the text (`Unresolved alias ...: <the password>`) and its warnings go to the process's
 * stderr. An error names the file, line and column and what to do; a warning (an unquoted `!value` read as a tag and
 * silently emptied) and an alias without its anchor (an unquoted `*value`) are errors too.
 */
export function parseSecretYaml(text: string, file: string, code: ErrorCode): unknown {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, logLevel: 'silent', uniqueKeys: true });
  const at = (offset: number): string => {
    const p = lines.linePos(offset);
    return `${file}:${p.line}:${p.col}`;
  };
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    throw new RackseedError(code, `${at(problem.pos[0])}: not valid YAML here (${problem.code}; ${NOT_SHOWN}); quote a value that starts with !, *, &, @, a backtick or a quote`, { file });
  }
  let dangling: Node | undefined;
  visit(doc, {
    Alias(_key, node) {
      if (!dangling && node.resolve(doc) === undefined) dangling = node;
    },
  });
  if (dangling) {
    throw new RackseedError(code, `${at(dangling.range?.[0] ?? 0)}: a value starting with * is read as a reference to an anchor that is not there; quote it (${NOT_SHOWN})`, { file });
  }
  try {
    return doc.toJS();
  } catch {
    throw new RackseedError(code, `${file}: could not be read as YAML (${NOT_SHOWN})`, { file });
  }
}
