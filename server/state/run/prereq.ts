import type { CompiledState, ModuleContext, ModuleRegistry, ResolvedRequisite, StateKey, StateRef } from '../types.js';
import { evaluateRunConditions } from './conditions.js';
import { functionName } from './module-call.js';

export type PrereqVerdict =
  | { kind: 'would-change'; by: StateRef[] }
  | { kind: 'no-change' }
  | { kind: 'unavailable'; comment: string };

/**
 * Salt's prereq: the state runs only if at least one of its prereq targets would change, which is asked of the
 * target's run conditions (onlyif, unless, creates) and then its `check` (neither changes the node), now, before either
 * of them runs. The target's own requisites are not judged here (they may not have run yet).
 */
export async function evaluatePrereqs(
  prereqs: readonly ResolvedRequisite[],
  statesByKey: ReadonlyMap<StateKey, CompiledState>,
  registry: ModuleRegistry,
  ctx: ModuleContext,
): Promise<PrereqVerdict> {
  const by: StateRef[] = [];
  for (const requisite of prereqs) {
    for (const key of requisite.on) {
      const target = statesByKey.get(key);
      if (target === undefined) return { kind: 'unavailable', comment: `prereq ${key} is not in the plan` };
      const fn = registry.get(functionName(target));
      if (fn === undefined) return { kind: 'unavailable', comment: `prereq ${key}: unknown state function ${functionName(target)}` };
      // A target its own onlyif/unless/creates would skip changes nothing: the prereq state must not run for it (a
      // service stopped for a deploy that then does not happen stays stopped, on every converge).
      if ((await evaluateRunConditions(target, ctx.transport)).kind === 'skip') continue;
      const checked = await fn.check(target, ctx);
      if (!checked.inSync) {
        by.push(requisite.ref);
        break;
      }
    }
  }
  return by.length > 0 ? { kind: 'would-change', by } : { kind: 'no-change' };
}
