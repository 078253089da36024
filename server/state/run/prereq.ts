import type { CompiledState, ModuleContext, ModuleRegistry, ResolvedRequisite, StateKey, StateRef } from '../types.js';
import { evaluateRunConditions } from './conditions.js';
import { functionName } from './module-call.js';
import type { StateOutcome } from './outcome.js';
import { describeRefs } from './refs.js';

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

/**
 * A prereq target whose preparing state failed is not run. As in Salt (state.py call_chunk: the "fail" status of a
 * state in self.pre reports its test run, with the changes removed since 3006), it reports what its check says now:
 * null when it would have changed, true when it is in sync or its onlyif/unless/creates would skip it, never the
 * changes, which were not made. So the failure is counted once, on the preparing state, and an onchanges dependent
 * of the target is not run rather than failed.
 */
export async function reportUnrunPrereqTarget(
  target: CompiledState,
  failedPreparers: readonly StateRef[],
  registry: ModuleRegistry,
  ctx: ModuleContext,
): Promise<StateOutcome> {
  const why = `not run because ${describeRefs(failedPreparers)} failed (its prereq)`;
  const fn = registry.get(functionName(target));
  if (fn === undefined) return { result: false, changes: {}, comment: `Unknown state function ${functionName(target)} (state ${target.id} in ${target.sls})` };
  const conditions = await evaluateRunConditions(target, ctx.transport);
  if (conditions.kind === 'skip') return { result: true, changes: {}, comment: `${conditions.comment}; ${why}` };
  const checked = await fn.check(target, ctx);
  const comment = checked.comment === '' ? why : `${checked.comment}; ${why}`;
  return { result: checked.inSync ? true : null, changes: {}, comment };
}
