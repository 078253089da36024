import type { CompiledState, ModuleContext, StateFunction, StateRef } from '../types.js';
import { hasChanges, type StateOutcome } from './outcome.js';
import { describeRefs } from './refs.js';

/** The registry key of a state's function: 'pkg.installed'. */
export function functionName(state: Pick<CompiledState, 'module' | 'fun'>): string {
  return `${state.module}.${state.fun}`;
}

export interface ModuleCall {
  test: boolean;
  /** Watched states that changed (or would, in test mode): the module's watch action is due. */
  watchChanged: readonly StateRef[];
  /** Prereq targets that would change, when the state has prereqs (it only runs then). */
  prereqWouldChange?: readonly StateRef[];
}

/**
 * One attempt at a state's module function. Test mode only checks. Apply mode checks, applies when out of sync,
 * then runs the watch action (Salt's mod_watch) when a watched state changed — but, as in Salt, only when the
 * normal run succeeded without changes of its own (a service that was just started has already read its config).
 */
export async function callModule(fn: StateFunction, state: CompiledState, ctx: ModuleContext, call: ModuleCall): Promise<StateOutcome> {
  const checked = await fn.check(state, ctx);
  const watchDue = fn.watch !== undefined && call.watchChanged.length > 0;

  if (call.test) {
    if (call.prereqWouldChange !== undefined) {
      return { result: null, changes: checked.changes, comment: appendNote(checked.comment, `would run because prereq ${describeRefs(call.prereqWouldChange)} would change`) };
    }
    if (checked.inSync && watchDue) {
      return { result: null, changes: {}, comment: appendNote(checked.comment, `watch action would run because ${describeRefs(call.watchChanged)} changed`) };
    }
    if (checked.inSync) return { result: true, changes: {}, comment: checked.comment };
    return { result: null, changes: checked.changes, comment: checked.comment };
  }

  const normal: StateOutcome = checked.inSync
    ? { result: true, changes: {}, comment: checked.comment }
    : await fn.apply(state, ctx, checked);
  if (!watchDue || fn.watch === undefined || normal.result !== true || hasChanges(normal.changes)) return normal;

  const watched = await fn.watch(state, ctx);
  return {
    result: watched.result,
    changes: { ...normal.changes, ...watched.changes },
    comment: appendNote(normal.comment, `watch action (${describeRefs(call.watchChanged)} changed): ${watched.comment}`),
  };
}

function appendNote(comment: string, note: string): string {
  return comment === '' ? note : `${comment}; ${note}`;
}
