import { RackseedError } from '../../model/errors.js';
import type { CompiledState, OrderValue, RequisiteKind } from '../types.js';
import { describeState, where } from './keys.js';
import type { ResolvedState } from './resolve.js';

/**
 * Execution order, as Salt runs it: states are taken in (order class, order number, definition index) order --
 * first < numbers ascending < unordered < negative numbers < last -- and each state's dependencies are placed
 * right before it (recursively, in the same order). So definition order is the default, `order:` moves states,
 * requisites pull what they need earlier and win over `order:`, and ties cannot happen (definition indexes differ).
 *
 * Dependencies: require/watch/onchanges/onfail X on A run X before A. prereq X on A runs A BEFORE X (Salt's prereq:
 * the runner checks X in test mode first and runs A only if X would change), so that requisite points at a LATER
 * state, the one exception to "requisites point earlier". A cycle is STATE_REQUISITE_CYCLE naming its states.
 */
export function orderStates(states: readonly ResolvedState[]): CompiledState[] {
  const indexOf = new Map(states.map((s, i) => [s.key, i]));
  const rank = states.map((s, i) => [...orderClass(s.order), i] as const);
  const byRank = (a: number, b: number): number => compareRank(rank[a]!, rank[b]!);
  /** before[v]: the states that must run before v, with the requisite that says so. */
  const before: Array<Map<number, Link>> = states.map(() => new Map());
  states.forEach((state, i) => {
    for (const req of state.requisites) {
      for (const key of req.on) {
        const j = indexOf.get(key);
        if (j === undefined) throw new RackseedError('INTERNAL', `${describeState(state)}: requisite on unknown key ${key}`);
        if (req.kind === 'prereq') setOnce(before[j]!, i, { kind: req.kind, declaredBy: i, on: j });
        else setOnce(before[i]!, j, { kind: req.kind, declaredBy: i, on: j });
      }
    }
  });

  const placed = new Set<number>();
  const active: number[] = [];
  const sequence: number[] = [];
  const place = (v: number): void => {
    if (placed.has(v)) return;
    const at = active.indexOf(v);
    if (at >= 0) throw cycleError(states, [...active.slice(at), v], before);
    active.push(v);
    for (const u of [...before[v]!.keys()].sort(byRank)) place(u);
    active.pop();
    placed.add(v);
    sequence.push(v);
  };
  for (const v of states.map((_, i) => i).sort(byRank)) place(v);
  return sequence.map((i, index) => ({ ...states[i]!, index }));
}

interface Link {
  kind: RequisiteKind;
  /** The state whose requisite it is, and the state it names. */
  declaredBy: number;
  on: number;
}

function setOnce(map: Map<number, Link>, key: number, link: Link): void {
  if (!map.has(key)) map.set(key, link);
}

function orderClass(order: OrderValue | undefined): [number, number] {
  if (order === undefined) return [2, 0];
  if (order === 'first') return [0, 0];
  if (order === 'last') return [4, 0];
  return order < 0 ? [3, order] : [1, order];
}

function compareRank(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** `path` is [v0, v1, ..., v0]: each state needed the next one to run before it. */
function cycleError(states: readonly ResolvedState[], path: number[], before: Array<Map<number, Link>>): RackseedError {
  const cycle = path.slice(0, -1);
  const name = (i: number): string => `${states[i]!.module}: ${states[i]!.id}`;
  const links = cycle.map((v, i) => {
    const u = path[i + 1]!;
    const link = before[v]!.get(u)!;
    return `${link.kind} (${name(link.declaredBy)} on ${name(link.on)}, ${where(states[link.declaredBy]!.source)})`;
  });
  return new RackseedError('STATE_REQUISITE_CYCLE', `requisite cycle between ${cycle.map(name).join(', ')}: ${links.join('; ')}`, {
    states: cycle.map((i) => states[i]!.key),
    files: [...new Set(cycle.map((i) => states[i]!.source.file))],
  });
}
