import type { z } from 'zod';

import { RackseedError } from '../../model/errors.js';
import type { ApplyOutcome, CheckOutcome, CompiledState, ModuleContext, StateFunction } from '../types.js';
import { argProblems, parseArgs } from './args.js';

/** What one state function sees: its parsed args and its `name`. */
export interface Call<A> {
  name: string;
  args: A;
  state: CompiledState;
  ctx: ModuleContext;
}

export interface FunctionSpec<S extends z.ZodType> {
  schema: S;
  /** Problems no schema expresses (two args that exclude each other); messages name the keys. */
  crossCheck?(args: z.output<S>): string[];
  /** Problems with the state's `name` (file paths must be absolute); undefined when fine. */
  checkName?(name: string): string | undefined;
  check(call: Call<z.output<S>>): Promise<CheckOutcome>;
  apply(call: Call<z.output<S>>, checked: CheckOutcome): Promise<ApplyOutcome>;
  watch?(call: Call<z.output<S>>): Promise<ApplyOutcome>;
}

/** Wraps a typed spec as a StateFunction: args are parsed (and rejected with a named key) before every call. */
export function defineFunction<S extends z.ZodType>(spec: FunctionSpec<S>): StateFunction {
  const toCall = (state: CompiledState, ctx: ModuleContext): Call<z.output<S>> => {
    const where = `${state.module}.${state.fun} ${state.id}`;
    const args = parseArgs(spec.schema, state.args, where);
    const problems = [...(spec.crossCheck?.(args) ?? [])];
    const nameProblem = spec.checkName?.(state.name);
    if (nameProblem !== undefined) problems.unshift(`name: ${nameProblem}`);
    if (problems.length > 0) throw new RackseedError('SLS_INVALID', `${where}: ${problems.join('; ')}`, { problems });
    return { name: state.name, args, state, ctx };
  };
  const fn: StateFunction = {
    // async, so a bad argument rejects the returned promise rather than throwing at the call site.
    check: async (state, ctx) => spec.check(toCall(state, ctx)),
    apply: async (state, ctx, checked) => spec.apply(toCall(state, ctx), checked),
    validate(args) {
      const name = typeof args.name === 'string' ? spec.checkName?.(args.name) : undefined;
      const parsed = spec.schema.safeParse(args);
      const rest = parsed.success ? (spec.crossCheck?.(parsed.data) ?? []) : argProblems(spec.schema, args);
      return name === undefined ? rest : [`name: ${name}`, ...rest];
    },
  };
  if (spec.watch) {
    const watch = spec.watch;
    fn.watch = async (state, ctx) => watch(toCall(state, ctx));
  }
  return fn;
}

/** Outcome helpers, so every module words its results the same way. */
export const inSync = (comment: string): CheckOutcome => ({ inSync: true, changes: {}, comment });
export const wouldChange = (changes: Record<string, unknown>, comment: string): CheckOutcome => ({ inSync: false, changes, comment });
export const applied = (changes: Record<string, unknown>, comment: string): ApplyOutcome => ({ result: true, changes, comment });
export const failed = (comment: string, changes: Record<string, unknown> = {}): ApplyOutcome => ({ result: false, changes, comment });
