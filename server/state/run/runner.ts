import type { CompiledPlan, CompiledState, ModuleContext, ModuleRegistry, RunOptions, StateKey, StateResult } from '../types.js';
import { guardTransport } from './exec.js';
import type { NodeRunOutcome, RunAbort, StateOutcome } from './outcome.js';
import { realSleep, type Sleep } from './retry.js';
import { runState } from './run-state.js';

export const FAILHARD_COMMENT = 'Failhard is set, remaining states skipped';

export interface RunPlanEnv {
  registry: ModuleRegistry;
  context: ModuleContext;
  options: RunOptions;
  /** Called with each state's result as soon as it is known (for streaming progress). */
  onResult?: (result: StateResult) => void;
  /** Milliseconds clock for startedAt/durationMs; injected so tests are deterministic. */
  now?: () => number;
  /** Waits between retry attempts; injected so tests do not wait. */
  sleep?: Sleep;
}

/**
 * Runs a node's compiled plan in order and returns one result per state. It never throws for what happens on the
 * node: a dropped connection fails the state it happened in and every state after it, and is reported in `aborted`.
 */
export async function runPlan(plan: CompiledPlan, env: RunPlanEnv): Promise<NodeRunOutcome> {
  const now = env.now ?? Date.now;
  const test = env.options.test;
  const timeoutMs = env.options.timeoutMs ?? env.context.timeoutMs;
  const ctx: ModuleContext = { ...env.context, timeoutMs, transport: guardTransport(env.context.transport, timeoutMs) };
  const statesByKey = new Map(plan.states.map((s) => [s.key, s]));
  const resultsByKey = new Map<StateKey, StateResult>();
  const results: StateResult[] = [];
  let aborted: (RunAbort & { comment: string }) | undefined;

  const record = (result: StateResult): void => {
    results.push(result);
    resultsByKey.set(result.key, result);
    env.onResult?.(result);
  };

  for (const [runNum, state] of plan.states.entries()) {
    const startedAt = now();
    if (aborted !== undefined) {
      record(toStateResult(state, runNum, { result: false, changes: {}, comment: aborted.comment }, startedAt, startedAt));
      continue;
    }
    const step = await runState(state, { registry: env.registry, ctx, test, sleep: env.sleep ?? realSleep, results: resultsByKey, statesByKey });
    record(toStateResult(state, runNum, step.outcome, startedAt, now()));

    if (step.kind === 'connection-lost') {
      aborted = { cause: 'transport', reason: step.reason, comment: `not run: connection to ${ctx.transport.target} lost: ${step.reason}` };
    } else if (step.outcome.result === false && !env.options.test && (state.failhard || env.options.failhard === true)) {
      // Not in a dry run (Salt's check_failhard): the preview of the rest of the node is what a dry run is for.
      aborted = { cause: 'failhard', reason: `${state.key} failed and failhard is set`, comment: FAILHARD_COMMENT };
    }
  }
  return aborted === undefined ? { results } : { results, aborted: { cause: aborted.cause, reason: aborted.reason } };
}

function toStateResult(state: CompiledState, runNum: number, outcome: StateOutcome, startedAt: number, endedAt: number): StateResult {
  return {
    key: state.key,
    id: state.id,
    name: state.name,
    sls: state.sls,
    module: state.module,
    fun: state.fun,
    result: outcome.result,
    changes: outcome.changes,
    comment: outcome.comment,
    durationMs: endedAt - startedAt,
    startedAt,
    runNum,
  };
}
