import { RackseedError } from '../../model/errors.js';
import type { CompiledState, ResolvedRequisite, StateDecl } from '../types.js';
import { describeState, stateKey, where } from './keys.js';
import { describeRef, matchRef } from './match.js';

export type ResolvedState = Omit<CompiledState, 'index'>;

/**
 * Turns each forward requisite into the keys of the states it means. A reference that matches no state is
 * STATE_REQUISITE_MISSING naming the requiring state, the reference and where it was written; a state never
 * depends on itself (an `sls:` ref to its own SLS means the others).
 */
export function resolveRequisites(states: readonly StateDecl[]): ResolvedState[] {
  const keyed = states.map((s) => ({ decl: s, key: stateKey(s) }));
  const declsWithKey = keyed.map(({ decl, key }) => Object.assign({}, decl, { key }));
  return keyed.map(({ decl, key }) => {
    const requisites: ResolvedRequisite[] = [];
    for (const req of decl.requisites) {
      if (req.reverse) throw new RackseedError('INTERNAL', `${describeState(decl)}: ${req.kind}_in left after the requisite-in pass`);
      const matches = matchRef(req.ref, declsWithKey);
      const on = [...new Set(matches.map((m) => m.key))].filter((k) => k !== key);
      if (matches.length === 0) {
        throw new RackseedError(
          'STATE_REQUISITE_MISSING',
          `${where(decl.source)}: ${describeState(decl)} has ${req.kind} "${describeRef(req.ref)}", but no such state is in this node's plan`,
          { state: key, id: decl.id, kind: req.kind, ref: req.ref, file: decl.source.file, line: decl.source.line },
        );
      }
      if (on.length === 0) continue;
      if (requisites.some((r) => r.kind === req.kind && r.ref.module === req.ref.module && r.ref.target === req.ref.target)) continue;
      requisites.push({ kind: req.kind, on, ref: req.ref });
    }
    const { requisites: _declared, ...rest } = decl;
    return { ...rest, key, requisites };
  });
}
