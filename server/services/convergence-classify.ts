import type { ErrorCode } from '../model/errors.js';
import type { StateResult } from '../state/types.js';
import type { NodeRunReport } from './state-service.js';

/**
 * What a state apply's outcome means for convergence. TRANSIENT: the node could not be reached or the link broke
 * (it may still be booting, or rebooting): try again later. PERMANENT: the node answered and something is wrong
 * (a state failed, an SLS does not compile, the host key does not match): retrying cannot fix it, the operator
 * must (or a role change brings new states). A run whose end the store could not take is transient too. Pure.
 */
export type ApplyVerdict =
  | { kind: 'ok' }
  | { kind: 'transient'; reason: string }
  | { kind: 'permanent'; reason: string };

/**
 * Node-level error codes that mean "not reachable (yet)". STATE_TIMEOUT counts only when no state failed on its own:
 * then it was fact collection on a node too busy booting to answer, not a state that hangs every time.
 */
const TRANSIENT_CODES: ReadonlySet<string> = new Set<ErrorCode>(['STATE_TRANSPORT', 'STATE_TIMEOUT', 'STORE_UNAVAILABLE']);

/** The `failed` event's reason is stored and shown in one line: keep it bounded. */
const MAX_REASON = 2000;

function bounded(text: string): string {
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON - 1)}…` : text;
}

function failedStates(states: readonly StateResult[]): StateResult[] {
  return states.filter((s) => s.result === false);
}

export function classifyApply(report: NodeRunReport): ApplyVerdict {
  if (report.result === 'success' || report.result === 'changed') return { kind: 'ok' };
  const failing = failedStates(report.states);
  const code = report.error?.code;
  // A dropped connection fails the state that was running when it dropped: the transport, not that state, is the cause.
  if (code !== undefined && TRANSIENT_CODES.has(code) && (code === 'STATE_TRANSPORT' || failing.length === 0)) {
    return { kind: 'transient', reason: `${code}: ${report.error?.message ?? ''}`.trim() };
  }
  return { kind: 'permanent', reason: statesFailureReason(report) };
}

/**
 * Why a state failed, in one line. A command that wrote to stderr: `exit N: <its last line>` (its own explanation,
 * such as "K3s server ... does not answer yet"), leaving out `set -x` trace lines (`+ cmd`), and with the exit code,
 * so that a trailing warning reads as what the command said last, not as the cause. Else the first line of the state's
 * comment (for a command that is only `Command "<the whole script>" failed`, which says nothing; after retries, that
 * of the first attempt).
 */
function stateFailure(state: StateResult): string {
  const { stderr, retcode } = state.changes;
  const said = typeof stderr === 'string' ? stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !XTRACE.test(l)).pop() : undefined;
  if (said === undefined) return state.comment.split('\n')[0] ?? '';
  return typeof retcode === 'number' ? `exit ${retcode}: ${said}` : said;
}

/** A line of the shell's `set -x` trace: one or more `+` (one per nesting level), then a space. */
const XTRACE = /^\++ /;

/** `states: N failed: <first failing state id>: <why> (run <id>)`, or the node-level error. */
export function statesFailureReason(report: NodeRunReport): string {
  const failing = failedStates(report.states);
  const run = report.runId ? ` (run ${report.runId})` : '';
  const first = failing[0];
  if (first) return bounded(`states: ${failing.length} failed: ${first.id}: ${stateFailure(first)}${run}`);
  if (report.error) return bounded(`states: ${report.error.code}: ${report.error.message}${run}`);
  return bounded(`states: run failed${run}`);
}

/** The reason recorded when a node stayed unreachable through every attempt. */
export function unreachableReason(attempts: number, lastReason: string, runId: string): string {
  return bounded(`states: not reachable after ${attempts} attempt(s): ${lastReason}${runId ? ` (run ${runId})` : ''}`);
}
