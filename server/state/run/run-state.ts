import type { CompiledState, ModuleContext, ModuleRegistry, StateKey, StateRef, StateResult } from '../types.js';
import { evaluateRunConditions } from './conditions.js';
import { classifyStateError } from './errors.js';
import { callModule, functionName } from './module-call.js';
import type { StateOutcome } from './outcome.js';
import { evaluatePrereqs, reportUnrunPrereqTarget } from './prereq.js';
import { describeRefs } from './refs.js';
import { evaluateRequisites } from './requisites.js';
import { withRetry, type Sleep } from './retry.js';

export interface StateRunEnv {
  registry: ModuleRegistry;
  /** The module context, its timeoutMs already the one this run uses. */
  ctx: ModuleContext;
  test: boolean;
  sleep: Sleep;
  /** Results of the states run so far. */
  results: ReadonlyMap<StateKey, StateResult>;
  /** Every state of the plan, for prereq targets (which have not run yet). */
  statesByKey: ReadonlyMap<StateKey, CompiledState>;
}

export type StateStep =
  | { kind: 'done'; outcome: StateOutcome }
  /** The connection to the node dropped while this state ran: the node's run ends here. */
  | { kind: 'connection-lost'; outcome: StateOutcome; reason: string };

/** Runs one state: requisites, then prereq, then unless/onlyif/creates, then the module (retried if asked). */
export async function runState(state: CompiledState, env: StateRunEnv): Promise<StateStep> {
  const { ctx, test } = env;
  try {
    // Salt's prerequired: a state that another state prepares with prereq (stop a service before replacing it) does
    // not run when that preparation failed.
    const failedPrereqs = failedPreparations(state, env);
    if (failedPrereqs.length > 0) return { kind: 'done', outcome: await reportUnrunPrereqTarget(state, failedPrereqs, env.registry, ctx) };

    const verdict = evaluateRequisites(state, env.results, test);
    switch (verdict.kind) {
      case 'failed':
        return done(false, `One or more requisite failed: ${describeRefs(verdict.failed)}`);
      case 'skip':
        return done(true, verdict.comment);
      case 'run':
        break;
    }
    const fn = env.registry.get(functionName(state));
    if (fn === undefined) return done(false, `Unknown state function ${functionName(state)} (state ${state.id} in ${state.sls})`);

    let prereqWouldChange: StateRef[] | undefined;
    if (verdict.prereqs.length > 0) {
      const prereq = await evaluatePrereqs(verdict.prereqs, env.statesByKey, env.registry, ctx);
      if (prereq.kind === 'unavailable') return done(false, prereq.comment);
      if (prereq.kind === 'no-change') return done(true, 'No changes detected');
      prereqWouldChange = prereq.by;
    }
    const conditions = await evaluateRunConditions(state, ctx.transport);
    if (conditions.kind === 'skip') return done(true, conditions.comment);

    const call = { test, watchChanged: verdict.watchChanged, ...(prereqWouldChange ? { prereqWouldChange } : {}) };
    let attempt = 0;
    const outcome = await withRetry(state.retry, test, env.sleep, async () => {
      try {
        // As in Salt, each retry goes through unless/onlyif/creates again: a first attempt that did the work but
        // failed (a join that exits 1 after joining) must not be run again once the guard says it is done.
        if (attempt++ > 0) {
          const again = await evaluateRunConditions(state, ctx.transport);
          if (again.kind === 'skip') return { result: true, changes: {}, comment: again.comment };
        }
        return await callModule(fn, state, ctx, call);
      } catch (error) {
        const failure = classifyStateError(error, ctx.timeoutMs);
        // A dropped connection is not worth retrying: it ends the node's run (handled below).
        if (failure.kind === 'connection-lost') throw error;
        return { result: false, changes: {}, comment: failure.comment };
      }
    });
    return { kind: 'done', outcome };
  } catch (error) {
    const failure = classifyStateError(error, ctx.timeoutMs);
    switch (failure.kind) {
      case 'connection-lost':
        return {
          kind: 'connection-lost',
          reason: failure.reason,
          outcome: { result: false, changes: {}, comment: `Connection to ${ctx.transport.target} lost: ${failure.reason}` },
        };
      case 'timeout':
      case 'error':
        return done(false, failure.comment);
    }
  }
}

function done(result: boolean, comment: string): StateStep {
  return { kind: 'done', outcome: { result, changes: {}, comment } };
}

/** The states that name `state` in a prereq and have failed (they ran before it: prereq orders them first). */
function failedPreparations(state: CompiledState, env: StateRunEnv): StateRef[] {
  const failed: StateRef[] = [];
  for (const other of env.statesByKey.values()) {
    if (other.key === state.key || env.results.get(other.key)?.result !== false) continue;
    if (other.requisites.some((r) => r.kind === 'prereq' && r.on.includes(state.key))) failed.push({ module: other.module, target: other.id });
  }
  return failed;
}
