import { RackseedError } from '../../model/errors.js';
import type { DeclaredRequisite, StateDecl } from '../types.js';
import { sameRequisite } from './extend-exclude.js';
import { describeState, where } from './keys.js';
import { describeRef, matchRef } from './match.js';

/**
 * Inverts the `_in` forms: `require_in: [{service: nginx}]` on A becomes `require: [{<A's module>: <A's ID>}]` on
 * every state the reference matches. Afterwards no requisite is reversed. A `_in` naming no state is
 * STATE_REQUISITE_MISSING. Inputs are not modified.
 */
export function applyRequisiteIn(states: readonly StateDecl[]): StateDecl[] {
  const out = states.map((s) => ({ ...s, requisites: s.requisites.filter((r) => !r.reverse) }));
  states.forEach((source) => {
    for (const req of source.requisites) {
      if (!req.reverse) continue;
      const targets = matchRef(req.ref, out).filter((t) => !(t.id === source.id && t.module === source.module));
      if (targets.length === 0) {
        throw new RackseedError(
          'STATE_REQUISITE_MISSING',
          `${where(source.source)}: ${describeState(source)} has ${req.kind}_in "${describeRef(req.ref)}", but no such state is in this node's plan`,
          { state: source.id, sls: source.sls, kind: `${req.kind}_in`, ref: req.ref, file: source.source.file, line: source.source.line },
        );
      }
      const forward: DeclaredRequisite = { kind: req.kind, reverse: false, ref: { module: source.module, target: source.id } };
      for (const target of targets) if (!target.requisites.some((r) => sameRequisite(r, forward))) target.requisites.push(forward);
    }
  });
  return out;
}
