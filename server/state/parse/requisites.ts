import { REQUISITE_KINDS, type DeclaredRequisite, type RequisiteKind, type StateRef } from '../types.js';

/** StateRef.module of a bare `- nginx` reference: any module whose state has that ID (or name). */
export const ANY_MODULE = '*';

const KINDS: ReadonlySet<string> = new Set(REQUISITE_KINDS);

/** 'require' -> forward require; 'watch_in' -> reverse watch; anything else -> undefined. */
export function requisiteKeyword(key: string): { kind: RequisiteKind; reverse: boolean } | undefined {
  if (KINDS.has(key)) return { kind: key as RequisiteKind, reverse: false };
  if (key.endsWith('_in') && KINDS.has(key.slice(0, -3))) return { kind: key.slice(0, -3) as RequisiteKind, reverse: true };
  return undefined;
}

/**
 * Salt keywords with requisite-like meaning this engine does not implement: refusing them beats silently passing
 * them to the module as arguments.
 */
export const UNSUPPORTED_KEYWORDS: ReadonlyMap<string, string> = new Map([
  ['listen', 'use watch'],
  ['listen_in', 'use watch_in'],
  ['use', 'repeat the arguments'],
  ['use_in', 'repeat the arguments'],
  ['require_any', 'use require'],
  ['watch_any', 'use watch'],
  ['onchanges_any', 'use onchanges'],
  ['onfail_any', 'use onfail'],
  ['onfail_all', 'use onfail'],
  ['onchanges_in_any', 'use onchanges_in'],
  ['prerequired', 'use prereq'],
  ['parallel', 'states run one at a time per node'],
  ['check_cmd', 'use unless/onlyif'],
  ['reload_modules', 'modules need no reload'],
  ['reload_pillar', 'pillar is compiled once per run'],
  ['reload_grains', 'facts are collected once per run'],
]);

/** Parses a requisite's value: `[{pkg: nginx}, {sls: base}, nginx]`, a single mapping, or one bare string. */
export function parseRequisiteRefs(value: unknown): StateRef[] | string {
  const items = Array.isArray(value) ? value : [value];
  const refs: StateRef[] = [];
  for (const item of items) {
    if (typeof item === 'string' || typeof item === 'number') {
      refs.push({ module: ANY_MODULE, target: String(item) });
    } else if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
      for (const [module, target] of Object.entries(item)) {
        const targets = Array.isArray(target) ? target : [target];
        for (const t of targets) {
          if (typeof t !== 'string' && typeof t !== 'number') return `"${module}:" needs a state ID or name, got ${JSON.stringify(t)}`;
          refs.push({ module, target: String(t) });
        }
      }
    } else {
      return `expected a list of "- module: ID" entries, got ${JSON.stringify(item)}`;
    }
  }
  if (refs.length === 0) return 'the list is empty';
  return refs;
}

export function declared(kind: RequisiteKind, reverse: boolean, refs: StateRef[]): DeclaredRequisite[] {
  return refs.map((ref) => ({ kind, reverse, ref }));
}
