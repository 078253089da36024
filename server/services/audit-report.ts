import type { Evidence } from '../readiness/types.js';
import { hasChanges } from '../state/run/outcome.js';
import { countResults, type RunCounts } from '../state/run/summary.js';
import type { StateResult } from '../state/types.js';
import type { RunResult } from '../store/types.js';

/**
 * PURE: what an audit found on one node, and the fleet summary. A node has drifted when a dry run of its states
 * predicts a change or cannot evaluate a state, when a readiness check fails, or when it could not be audited at
 * all: an audit that could not look never reports a node as clean.
 */

export interface AuditNodeReport {
  node: string;
  /** The stored run (kind 'audit'); '' when even storing it failed. */
  runId: string;
  drift: boolean;
  /** False when no connection could be opened; the reason is in `error` and in the failing base.ssh check. */
  reachable: boolean;
  /** States the dry run says would change, with their predicted changes (file states carry a unified diff). */
  wouldChange: StateResult[];
  /** States whose check itself failed (result false): their state on the node is unknown. */
  failedStates: StateResult[];
  failedChecks: Evidence[];
  /** Every state of the dry run, counted. */
  counts: RunCounts;
  /** How many readiness checks ran (passing ones included). */
  checks: number;
  startedAt: number;
  durationMs: number;
  /** Why the node could not be audited completely (no connection, no facts, an SLS that does not compile). */
  error?: { code: string; message: string };
}

/** Last NDJSON line of an audit; drifted + clean + unreachable = nodes. */
export interface AuditSummary {
  type: 'summary';
  nodes: number;
  /** Reachable nodes with drift (including those only partly audited). */
  drifted: number;
  clean: number;
  unreachable: number;
  /** Reachable nodes that could not be audited completely: an error, or a state whose check failed (counted in `drifted` too). */
  incomplete: number;
}

export type AuditLine = { type: 'start'; nodes: string[] } | { type: 'node'; report: AuditNodeReport } | AuditSummary;

/** A dry run's state that is not simply "already matches": it would change (null, or true with changes) or failed. */
function wouldChangeState(s: StateResult): boolean {
  return s.result === null || (s.result === true && hasChanges(s.changes));
}

export interface AuditInputs {
  node: string;
  runId: string;
  reachable: boolean;
  states: readonly StateResult[];
  evidence: readonly Evidence[];
  startedAt: number;
  finishedAt: number;
  error?: { code: string; message: string } | undefined;
}

export function buildAuditReport(input: AuditInputs): AuditNodeReport {
  const wouldChange = input.states.filter(wouldChangeState);
  const failedStates = input.states.filter((s) => s.result === false);
  const failedChecks = input.evidence.filter((e) => !e.pass);
  return {
    node: input.node,
    runId: input.runId,
    drift: wouldChange.length > 0 || failedStates.length > 0 || failedChecks.length > 0 || input.error !== undefined || !input.reachable,
    reachable: input.reachable,
    wouldChange,
    failedStates,
    failedChecks,
    counts: countResults(input.states),
    checks: input.evidence.length,
    startedAt: input.startedAt,
    durationMs: input.finishedAt - input.startedAt,
    ...(input.error ? { error: input.error } : {}),
  };
}

/** The stored run's verdict: 'failed' when something could not be evaluated, 'changed' for drift, else 'success'. */
/**
 * Whether the audit saw everything: reachable, evaluated, every state's check ran, and every readiness check's
 * command ran. A state whose check failed, or a check that timed out, leaves that part of the node unknown, so, as
 * for an error, it may hide drift (and `state test` exits 1 on it too).
 */
export function fullyAudited(r: AuditNodeReport): boolean {
  return r.reachable && r.error === undefined && r.failedStates.length === 0 && !r.failedChecks.some((e) => e.notRun);
}

export function auditRunResult(r: AuditNodeReport): RunResult {
  if (!fullyAudited(r)) return 'failed';
  return r.drift ? 'changed' : 'success';
}

/** What the 'audit' run keeps: the drifted states only (a converged node's hundred ok states say nothing), counts, all evidence. */
export function auditRunRecord(r: AuditNodeReport, evidence: readonly Evidence[]): { summary: Record<string, unknown>; details: unknown } {
  return {
    summary: {
      drift: r.drift,
      reachable: r.reachable,
      wouldChange: r.wouldChange.length,
      failedStates: r.failedStates.length,
      failedChecks: r.failedChecks.map((e) => e.check),
      counts: r.counts,
      checks: r.checks,
      ...(r.error ? { error: r.error } : {}),
    },
    details: { states: [...r.wouldChange, ...r.failedStates], counts: r.counts, evidence },
  };
}

export function summarizeAudit(reports: readonly AuditNodeReport[]): AuditSummary {
  const unreachable = reports.filter((r) => !r.reachable).length;
  const reachable = reports.filter((r) => r.reachable);
  return {
    type: 'summary',
    nodes: reports.length,
    drifted: reachable.filter((r) => r.drift).length,
    clean: reachable.filter((r) => !r.drift).length,
    unreachable,
    incomplete: reachable.filter((r) => !fullyAudited(r)).length,
  };
}
