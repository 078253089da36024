import type { Run } from '../../../store/types.js';

/**
 * Pure views of stored runs for the node page. A run's `details` is `unknown` in the store (state runs hold
 * StateResult[], readiness runs hold evidence), so everything here reads it defensively: a row that does not have
 * the expected shape is shown as what it is, never thrown on.
 */

export interface RunHeader {
  id: string;
  kind: string;
  result: string;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  /** Summary fields other than `error`, flattened to one line: "mode=apply counts: changed=1 failed=0". */
  summary: string;
  /** The run-level error (transport lost, compile failed), when there was one. */
  error?: string;
}

export type StateOutcome = 'unchanged' | 'changed' | 'failed' | 'would change';

export interface StateRow {
  sls: string;
  id: string;
  function: string;
  name: string;
  outcome: StateOutcome;
  /** The changes as one line ("pkgs: nginx, curl; mode: 0644"), without a diff. */
  changes: string;
  /** A unified diff file.managed stored in its changes (absent for show_changes: false states). */
  diff?: string;
  comment: string;
  durationMs?: number;
}

export interface EvidenceRow {
  check: string;
  role: string;
  expected: string;
  seen: string;
  /** undefined when the check did not say (an error before it could decide). */
  pass?: boolean;
  reason: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v));
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

function flatten(value: unknown): string {
  if (!isRecord(value)) return text(value);
  return Object.entries(value)
    .map(([k, v]) => (isRecord(v) ? `${k}: ${flatten(v)}` : `${k}=${text(v)}`))
    .join(' ');
}

export function runHeader(run: Run): RunHeader {
  const { error, ...rest } = run.summary;
  const header: RunHeader = { id: run.id, kind: run.kind, result: run.result, startedAt: iso(run.startedAt)!, summary: flatten(rest) };
  if (run.finishedAt !== undefined) {
    header.finishedAt = iso(run.finishedAt)!;
    header.durationMs = run.finishedAt - run.startedAt;
  }
  if (error !== undefined) header.error = isRecord(error) && typeof error.message === 'string' ? `${text(error.code)} ${error.message}`.trim() : text(error);
  return header;
}

function summariseChanges(changes: Record<string, unknown>): string {
  return Object.entries(changes)
    .filter(([k]) => k !== 'diff')
    .map(([k, v]) => {
      if (isRecord(v)) return `${k}: ${Object.keys(v).join(', ')}`;
      if (Array.isArray(v)) return `${k}: ${v.map(text).join(', ')}`;
      const s = text(v);
      return s.length > 120 ? `${k}: ${s.slice(0, 117)}...` : `${k}: ${s}`;
    })
    .join('; ');
}

function outcomeOf(result: unknown, changes: Record<string, unknown>): StateOutcome {
  if (result === false) return 'failed';
  if (result === null) return 'would change';
  return Object.keys(changes).length > 0 ? 'changed' : 'unchanged';
}

/** Rows for the per-state table, in execution order. Elements that are not objects are skipped. */
export function stateRows(details: unknown): StateRow[] {
  if (!Array.isArray(details)) return [];
  return details
    .filter(isRecord)
    .map((r, i) => ({ r, order: typeof r.runNum === 'number' ? r.runNum : i }))
    .sort((a, b) => a.order - b.order)
    .map(({ r }) => {
      const changes = isRecord(r.changes) ? r.changes : {};
      const row: StateRow = {
        sls: text(r.sls),
        id: text(r.id),
        function: [text(r.module), text(r.fun)].filter(Boolean).join('.'),
        name: text(r.name),
        outcome: outcomeOf(r.result, changes),
        changes: summariseChanges(changes),
        comment: text(r.comment),
      };
      if (typeof changes.diff === 'string' && changes.diff) row.diff = changes.diff;
      if (typeof r.durationMs === 'number') row.durationMs = Math.round(r.durationMs);
      return row;
    });
}

/** Readiness evidence: `details` is a list of checks, or an object holding one under `evidence` or `checks`. */
export function evidenceRows(details: unknown): EvidenceRow[] {
  const list = Array.isArray(details) ? details : isRecord(details) ? (Array.isArray(details.evidence) ? details.evidence : Array.isArray(details.checks) ? details.checks : []) : [];
  return list.filter(isRecord).map((e) => {
    const row: EvidenceRow = { check: text(e.check), role: text(e.role), expected: text(e.expected), seen: text(e.seen), reason: text(e.reason) };
    if (typeof e.pass === 'boolean') row.pass = e.pass;
    return row;
  });
}

/** The newest run among those given (the store lists newest first per query; several queries are merged here). */
export function newestRun(runs: ReadonlyArray<Run | undefined>): Run | undefined {
  let best: Run | undefined;
  for (const r of runs) if (r && (!best || r.startedAt > best.startedAt)) best = r;
  return best;
}
