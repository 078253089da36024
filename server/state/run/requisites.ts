import type { CompiledState, ResolvedRequisite, StateKey, StateRef, StateResult } from '../types.js';
import { hasChanges } from './outcome.js';

/**
 * What a state's requisites say about running it, from the results of the states it depends on (all earlier in
 * the plan). Prereq is only collected here: it needs the target's check, which is I/O (see prereq.ts).
 */
export type RequisiteVerdict =
  | { kind: 'run'; watchChanged: StateRef[]; prereqs: ResolvedRequisite[] }
  | { kind: 'failed'; failed: StateRef[] }
  | { kind: 'skip'; comment: string };

export const ONCHANGES_UNMET_COMMENT = 'State was not run because none of the onchanges reqs changed';
export const ONFAIL_UNMET_COMMENT = 'State was not run because onfail req did not change';

interface Tally {
  failed: StateRef[];
  watchChanged: StateRef[];
  prereqs: ResolvedRequisite[];
  onchanges: { declared: boolean; met: boolean };
  onfail: { declared: boolean; met: boolean };
}

export function evaluateRequisites(state: CompiledState, results: ReadonlyMap<StateKey, StateResult>, test: boolean): RequisiteVerdict {
  const tally: Tally = {
    failed: [],
    watchChanged: [],
    prereqs: [],
    onchanges: { declared: false, met: false },
    onfail: { declared: false, met: false },
  };
  for (const requisite of state.requisites) addToTally(tally, requisite, results, test);

  // Salt's precedence: a failed requisite wins over an unmet onfail, which wins over unmet onchanges.
  if (tally.failed.length > 0) return { kind: 'failed', failed: tally.failed };
  if (tally.onfail.declared && !tally.onfail.met) return { kind: 'skip', comment: ONFAIL_UNMET_COMMENT };
  if (tally.onchanges.declared && !tally.onchanges.met) return { kind: 'skip', comment: ONCHANGES_UNMET_COMMENT };
  return { kind: 'run', watchChanged: tally.watchChanged, prereqs: tally.prereqs };
}

function addToTally(tally: Tally, requisite: ResolvedRequisite, results: ReadonlyMap<StateKey, StateResult>, test: boolean): void {
  // A target with no result cannot have succeeded; the compiler guarantees targets run first, so this is defensive.
  const targets = requisite.on.map((key) => results.get(key));
  // As in Salt's check_requisite, only a result of false is a failed target. A null is a predicted change in a dry
  // run, and in an apply a prereq target left unrun because the state preparing it failed (run-state.ts): that
  // failure is reported once, on the preparing state, and what depends on the target judges it by its changes
  // (none), so an onchanges dependent is not run rather than failed.
  const anyFailed = targets.some((r) => r === undefined || r.result === false);
  const anyChanged = targets.some((r) => r !== undefined && hasChanges(r.changes));
  switch (requisite.kind) {
    case 'require':
      if (anyFailed) tally.failed.push(requisite.ref);
      return;
    case 'watch':
      if (anyFailed) tally.failed.push(requisite.ref);
      else if (anyChanged) tally.watchChanged.push(requisite.ref);
      return;
    case 'onchanges':
      tally.onchanges.declared = true;
      if (anyFailed) tally.failed.push(requisite.ref);
      else if (anyChanged) tally.onchanges.met = true;
      return;
    case 'onfail':
      tally.onfail.declared = true;
      // Salt fires onfail for a target that did not succeed: a failure, or (in an apply) a prereq target left unrun.
      // In a dry run a predicted change (null) is not a failure, so it does not fire: Salt would, and so predict a
      // handler that the apply, where the target succeeds, does not run.
      if (targets.some((r) => r !== undefined && (r.result === false || (!test && r.result === null)))) tally.onfail.met = true;
      return;
    case 'prereq':
      tally.prereqs.push(requisite);
      return;
    default:
      return assertNever(requisite.kind);
  }
}

function assertNever(kind: never): never {
  throw new Error(`unhandled requisite kind ${String(kind)}`);
}
