import { ANY_MODULE } from '../parse/requisites.js';
import type { StateDecl, StateRef } from '../types.js';

/**
 * The states a requisite reference means: `sls: x` -> every state of SLS x; `module: target` -> the states of that
 * module whose ID is target, or failing that whose name is target (Salt matches IDs first); a bare ref (module
 * ANY_MODULE) the same across modules.
 */
export function matchRef<T extends Pick<StateDecl, 'module' | 'id' | 'name' | 'sls'>>(ref: StateRef, states: readonly T[]): T[] {
  if (ref.module === 'sls') return states.filter((s) => s.sls === ref.target);
  const sameModule = ref.module === ANY_MODULE ? states : states.filter((s) => s.module === ref.module);
  const byId = sameModule.filter((s) => s.id === ref.target);
  return byId.length > 0 ? byId : sameModule.filter((s) => s.name === ref.target);
}

export function describeRef(ref: StateRef): string {
  return ref.module === ANY_MODULE ? ref.target : `${ref.module}: ${ref.target}`;
}
