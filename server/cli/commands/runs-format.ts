import type { Evidence } from '../../readiness/types.js';
import type { StateResult } from '../../state/types.js';
import type { Run } from '../../store/types.js';
import { keyValues, table } from '../output.js';
import { formatNodeDetails } from './state.js';

/**
 * `rackseed runs`: stored runs as people read them. A stored run's summary and details are whatever its kind wrote
 * (and older servers, or a run abandoned while running, wrote less), so every field is read defensively: a run
 * prints with what it has rather than not at all.
 */

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** 0.42s, 12.3s, 4m05s, 2h03m: enough to tell a quick run from a stuck one. */
export function formatDuration(ms: number): string {
  if (ms < 0) return '-';
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The summary's `error` ({code, message}) as "CODE: message", if the run failed as a whole. */
function runError(run: Run): string | undefined {
  const e = run.summary.error;
  if (!isObject(e)) return undefined;
  const code = typeof e.code === 'string' ? e.code : 'ERROR';
  return typeof e.message === 'string' ? `${code}: ${e.message}` : code;
}

function errorCode(run: Run): string | undefined {
  const e = run.summary.error;
  return isObject(e) && typeof e.code === 'string' ? e.code : undefined;
}

/** apply: "1 failed, 2 changed, 10 ok"; test: "3 would change, 10 ok". */
function stateCounts(kind: 'apply' | 'test', counts: Record<string, unknown>): string {
  const parts: string[] = [];
  if (num(counts.failed) > 0) parts.push(`${num(counts.failed)} failed`);
  if (kind === 'apply' && num(counts.changed) > 0) parts.push(`${num(counts.changed)} changed`);
  const wouldChange = num(counts.wouldChange) + (kind === 'test' ? num(counts.changed) : 0);
  if (kind === 'test' && wouldChange > 0) parts.push(`${wouldChange} would change`);
  parts.push(`${num(counts.unchanged)} ok`);
  return parts.join(', ');
}

/** The RESULT cell of `runs list`: what the run found, in the terms of its kind. */
export function runResultCell(run: Run): string {
  if (run.result === 'running') return 'running';
  const s = run.summary;
  const failedWhole = run.result === 'failed' && errorCode(run) !== undefined;
  switch (run.kind) {
    case 'apply':
    case 'test': {
      // A run that failed as a whole (no connection, a compile error) ran no state: its error code says why.
      if (failedWhole && (!isObject(s.counts) || num(s.counts.total) === 0)) return `FAILED: ${errorCode(run)}`;
      if (!isObject(s.counts)) return run.result === 'failed' ? 'FAILED' : run.result;
      const counts = stateCounts(run.kind, s.counts);
      return run.result === 'failed' ? `FAILED: ${counts}` : counts;
    }
    case 'readiness': {
      if (s.ready === true && run.result === 'success') return 'ready';
      const failing = Array.isArray(s.failing) ? s.failing.filter((f): f is string => typeof f === 'string') : [];
      if (failing.length > 0) return `NOT READY: ${failing.join(', ')}`;
      return failedWhole ? `NOT READY: ${errorCode(run)}` : 'NOT READY';
    }
    case 'audit': {
      if (s.reachable === false) return `UNREACHABLE${errorCode(run) ? `: ${errorCode(run)}` : ''}`;
      if (s.drift === false) return `clean${failedWhole ? ` (incomplete: ${errorCode(run)})` : ''}`;
      if (s.drift !== true) return failedWhole ? `FAILED: ${errorCode(run)}` : run.result;
      const checks = Array.isArray(s.failedChecks) ? s.failedChecks.length : 0;
      const parts = [`${num(s.wouldChange)} would change`];
      if (num(s.failedStates) > 0) parts.push(`${num(s.failedStates)} failed`);
      parts.push(`${plural(checks, 'check')} failed`);
      return `DRIFT: ${parts.join(', ')}`;
    }
    default:
      return failedWhole ? `FAILED: ${errorCode(run)}` : run.result === 'failed' ? 'FAILED' : run.result;
  }
}

/** Newest first (as the API lists them): id, node, kind, started, duration, result. */
export function formatRunList(runs: readonly Run[]): string {
  if (runs.length === 0) return 'no stored runs match\n';
  const rows = runs.map((r) => [
    r.id,
    r.node,
    r.kind,
    isoSeconds(r.startedAt),
    r.finishedAt !== undefined ? formatDuration(r.finishedAt - r.startedAt) : undefined,
    runResultCell(r),
  ]);
  return `${table(['ID', 'NODE', 'KIND', 'STARTED', 'DURATION', 'RESULT'], rows)}\n`;
}

function stateResults(details: unknown): StateResult[] {
  return Array.isArray(details) ? details.filter((d): d is StateResult => isObject(d) && typeof d.id === 'string' && 'result' in d) : [];
}

function evidenceOf(details: unknown): Evidence[] {
  return Array.isArray(details) ? details.filter((d): d is Evidence => isObject(d) && typeof d.check === 'string' && typeof d.pass === 'boolean') : [];
}

/** Failed first, then what changed or would change, then the rest, each in the order they ran. */
function failedFirst(states: readonly StateResult[]): StateResult[] {
  const rank = (s: StateResult): number => (s.result === false ? 0 : s.result === null || Object.keys(s.changes ?? {}).length > 0 ? 1 : 2);
  return [...states].sort((a, b) => rank(a) - rank(b) || num(a.runNum) - num(b.runNum));
}

/** The states' lines: every one that failed, changed or would change with its comment and changes; the others counted. */
function formatStates(run: Run, mode: 'apply' | 'test', states: readonly StateResult[]): string[] {
  if (states.length === 0) return [];
  const sorted = failedFirst(states);
  // The state verbs' own lines (marker, module.fun, id, sls, comment, diff); of the report it reads only node, mode and states.
  const shown = formatNodeDetails({ node: run.node, runId: run.id, mode, result: 'changed', counts: { changed: 0, unchanged: 0, failed: 0, wouldChange: 0, total: 0 }, durationMs: 0, states: sorted });
  const quiet = sorted.filter((s) => s.result === true && Object.keys(s.changes ?? {}).length === 0).length;
  return [...(shown !== '' ? [shown] : []), ...(quiet > 0 ? [`${plural(quiet, 'state')} unchanged`] : [])];
}

/** Failing checks first, with the reason; passing ones one a line (a notable pass with its note). */
function formatEvidence(evidence: readonly Evidence[]): string[] {
  const failing = evidence.filter((e) => !e.pass);
  const passing = evidence.filter((e) => e.pass);
  return [
    ...failing.map((e) => `FAIL  ${e.check}${e.notRun ? ' (did not run)' : ''}: expected ${e.expected}, saw ${e.seen}${e.reason ? ` (${e.reason})` : ''}`),
    ...passing.map((e) => `pass  ${e.check}: ${e.seen}${e.reason ? ` (${e.reason})` : ''}`),
  ];
}

/** `runs show ID`: the run's header, then its per-state results or its readiness evidence. */
export function formatRun(run: Run): string {
  const pairs: Array<[string, string | number | undefined]> = [
    ['id', run.id],
    ['node', run.node],
    ['kind', run.kind],
    ['result', runResultCell(run)],
    ['started', isoSeconds(run.startedAt)],
    ['finished', run.finishedAt !== undefined ? isoSeconds(run.finishedAt) : undefined],
    ['duration', run.finishedAt !== undefined ? formatDuration(run.finishedAt - run.startedAt) : undefined],
  ];
  const error = runError(run);
  if (error) pairs.push(['error', error]);
  if (run.kind === 'readiness' && typeof run.summary.summary === 'string' && run.summary.summary !== '') pairs.push(['summary', run.summary.summary]);
  const blocks = [keyValues(pairs)];

  const details = isObject(run.details) ? run.details : undefined;
  const states = run.kind === 'apply' || run.kind === 'test' ? stateResults(run.details) : run.kind === 'audit' ? stateResults(details?.states) : [];
  const evidence = run.kind === 'readiness' ? evidenceOf(run.details) : run.kind === 'audit' ? evidenceOf(details?.evidence) : [];
  const stateLines = formatStates(run, run.kind === 'apply' ? 'apply' : 'test', states);
  if (stateLines.length > 0) blocks.push(`states:\n${stateLines.join('\n')}`);
  if (evidence.length > 0) blocks.push(`checks:\n${formatEvidence(evidence).join('\n')}`);
  if (stateLines.length === 0 && evidence.length === 0) {
    // An audit stores only the states that would change or failed: none is a clean dry run, not missing data.
    const auditClean = run.kind === 'audit' && isObject(run.summary.counts);
    if (!auditClean) blocks.push(run.result === 'running' ? 'no results yet: the run is still running (or its server stopped during it)' : 'no per-state results stored');
  }
  return `${blocks.join('\n\n')}\n`;
}
