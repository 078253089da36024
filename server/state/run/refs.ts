import type { StateRef } from '../types.js';

/** How a requisite reads in comments, as the author wrote it: `pkg: nginx`. */
export function describeRef(ref: StateRef): string {
  return `${ref.module}: ${ref.target}`;
}

export function describeRefs(refs: readonly StateRef[]): string {
  return refs.map(describeRef).join(', ');
}
