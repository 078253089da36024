import type { StateDecl, StateKey } from '../types.js';

/** Salt's state key: `module_|-id_|-name_|-fun`. */
export function stateKey(decl: Pick<StateDecl, 'module' | 'id' | 'name' | 'fun'>): StateKey {
  return `${decl.module}_|-${decl.id}_|-${decl.name}_|-${decl.fun}`;
}

/** `pkg: nginx (base.web, states/base/web.sls:3)`, for messages. */
export function describeState(decl: Pick<StateDecl, 'module' | 'id' | 'name' | 'sls' | 'source'>): string {
  const named = decl.name === decl.id ? '' : ` (name ${decl.name})`;
  return `${decl.module}: ${decl.id}${named} in ${decl.sls} (${where(decl.source)})`;
}

export function where(source: { file: string; line?: number }): string {
  return source.line === undefined ? source.file : `${source.file}:${source.line}`;
}
