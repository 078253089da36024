import { RackseedError } from '../../model/errors.js';
import { isSlsName, SLS_NAME_RULE } from '../source.js';
import type { SlsDocument, SourceRef } from '../types.js';
import { where } from './keys.js';

/** Renders and parses one SLS; undefined when the tree has no such SLS. */
export type SlsLoader = (sls: string) => SlsDocument | undefined;

/**
 * Loads the node's SLS and, recursively, what they include. Each SLS is loaded once (include cycles are tolerated,
 * as in Salt). Definition order: an SLS's includes (in written order) come before its own states, and SLS come in
 * the order top.sls names them.
 */
export function gatherSls(roots: ReadonlyArray<{ sls: string; source: SourceRef }>, load: SlsLoader): SlsDocument[] {
  const ordered: SlsDocument[] = [];
  const visited = new Set<string>();
  const visit = (sls: string, from: SourceRef): void => {
    if (visited.has(sls)) return;
    visited.add(sls);
    // Checked here, where the naming line is known (an include or a top.sls entry), not only by the loader.
    if (!isSlsName(sls)) throw new RackseedError('SLS_INVALID', `${where(from)}: "${sls}" is not a valid SLS name (${SLS_NAME_RULE})`, { sls, file: from.file, line: from.line });
    const doc = load(sls);
    if (!doc) throw new RackseedError('SLS_NOT_FOUND', `${where(from)}: SLS "${sls}" is not in the state tree`, { sls, file: from.file, line: from.line });
    for (const include of doc.includes) visit(include.sls, include.source);
    ordered.push(doc);
  };
  for (const root of roots) visit(root.sls, root.source);
  return ordered;
}
