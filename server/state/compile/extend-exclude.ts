import { RackseedError } from '../../model/errors.js';
import type { DeclaredRequisite, SlsDocument, StateDecl } from '../types.js';
import { where } from './keys.js';

/**
 * Flattens the gathered SLS into states in definition order, drops what `exclude:` names (`id:` or `sls:`), then
 * applies `extend:` in order: arguments are replaced key by key (`name` replaces the name), requisites appended.
 * As in Salt, nothing overrides an exclude: an excluded SLS's own extends are not applied, and an extend of an
 * excluded state is dropped with it. Extending a state no SLS defines is an error. Inputs are not modified.
 */
export function applyExtendExclude(docs: readonly SlsDocument[]): StateDecl[] {
  const excludes = docs.flatMap((d) => d.excludes);
  const excludedIds = new Set(excludes.filter((e) => e.kind === 'id').map((e) => e.target));
  const excludedSls = new Set(excludes.filter((e) => e.kind === 'sls').map((e) => e.target));
  const states = docs
    .flatMap((d) => d.states)
    .filter((s) => !excludedIds.has(s.id) && !excludedSls.has(s.sls))
    .map((s) => ({ ...s, args: { ...s.args }, requisites: [...s.requisites] }));

  for (const ext of docs.filter((d) => !excludedSls.has(d.sls)).flatMap((d) => d.extends)) {
    const sameId = states.filter((s) => s.id === ext.id);
    if (sameId.length === 0) {
      if (excludedIds.has(ext.id) || docs.some((d) => d.states.some((s) => s.id === ext.id))) continue;
      throw new RackseedError('STATE_COMPILE', `${where(ext.source)}: extend: cannot extend "${ext.id}": no SLS of this node defines it`, { id: ext.id, file: ext.source.file, line: ext.source.line });
    }
    const targets = sameId.filter((s) => s.module === ext.module);
    if (targets.length === 0) {
      throw new RackseedError('STATE_COMPILE', `${where(ext.source)}: extend: state "${ext.id}" has no ${ext.module} function (it has ${[...new Set(sameId.map((s) => s.module))].join(', ')})`, { id: ext.id, module: ext.module, file: ext.source.file, line: ext.source.line });
    }
    for (const target of targets) {
      const { name, ...args } = ext.args;
      if (name !== undefined) target.name = String(name);
      Object.assign(target.args, args);
      for (const req of ext.requisites) if (!target.requisites.some((r) => sameRequisite(r, req))) target.requisites.push(req);
    }
  }
  return states;
}

export function sameRequisite(a: DeclaredRequisite, b: DeclaredRequisite): boolean {
  return a.kind === b.kind && a.reverse === b.reverse && a.ref.module === b.ref.module && a.ref.target === b.ref.target;
}
