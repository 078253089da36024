import { RackseedError } from '../../model/errors.js';
import type { StateDecl } from '../types.js';
import { describeState, stateKey, where } from './keys.js';

export interface VerifyOptions {
  /** 'pkg.installed', ... When given, any other module function is STATE_MODULE_UNKNOWN. */
  knownFunctions?: ReadonlySet<string>;
  /** Module argument checks (StateFunction.validate); problems are messages naming the key. */
  validateArgs?: (decl: StateDecl) => string[];
}

/**
 * Checks the flattened states: IDs unique across SLS files (Salt requires it), no two states with the same key,
 * known module functions, valid arguments. Returns the states unchanged.
 */
export function verifyStates(states: readonly StateDecl[], options: VerifyOptions = {}): readonly StateDecl[] {
  const firstById = new Map<string, StateDecl>();
  const byKey = new Map<string, StateDecl>();
  for (const state of states) {
    const first = firstById.get(state.id);
    if (first && first.sls !== state.sls) {
      throw new RackseedError('STATE_COMPILE', `state ID "${state.id}" is declared in ${first.sls} (${where(first.source)}) and in ${state.sls} (${where(state.source)}); IDs must be unique across SLS files`, {
        id: state.id,
        files: [first.source.file, state.source.file],
      });
    }
    if (!first) firstById.set(state.id, state);
    const key = stateKey(state);
    const twin = byKey.get(key);
    if (twin) throw new RackseedError('STATE_COMPILE', `${describeState(state)} duplicates ${describeState(twin)} (same module, ID, name and function)`, { key });
    byKey.set(key, state);

    const fn = `${state.module}.${state.fun}`;
    if (options.knownFunctions && !options.knownFunctions.has(fn)) {
      const hint = closest(fn, [...options.knownFunctions]);
      throw new RackseedError('STATE_MODULE_UNKNOWN', `${where(state.source)}: state "${state.id}": unknown state function ${fn}${hint ? ` (did you mean ${hint}?)` : ''}`, {
        id: state.id,
        function: fn,
        file: state.source.file,
        line: state.source.line,
      });
    }
    const problems = options.validateArgs?.(state) ?? [];
    if (problems.length > 0) {
      throw new RackseedError('SLS_INVALID', `${where(state.source)}: state "${state.id}" ${fn}: ${problems.join('; ')}`, { id: state.id, function: fn, file: state.source.file, line: state.source.line, problems });
    }
  }
  return states;
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: { word: string; distance: number } | undefined;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d <= 3 && (!best || d < best.distance)) best = { word: c, distance: d };
  }
  return best?.word;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
