import { describe, expect, it } from 'vitest';
import { parseRunLimit, runsQuery } from '../../server/cli/commands/runs.js';
import { formatDuration, formatRun, formatRunList, runResultCell } from '../../server/cli/commands/runs-format.js';
import { UsageError } from '../../server/cli/exit.js';
import type { Evidence } from '../../server/readiness/types.js';
import type { StateResult } from '../../server/state/types.js';
import type { Run } from '../../server/store/types.js';

const T = Date.UTC(2026, 10, 24, 2, 0, 0);
const run = (over: Partial<Run>): Run => ({ id: 'r1', node: 'gpu07', kind: 'apply', result: 'success', startedAt: T, finishedAt: T + 1500, summary: {}, details: [], ...over });
/** A run with no end stored (still running, or its server stopped during it). */
const unfinished = (over: Partial<Run>): Run => {
  const { finishedAt: _, ...rest } = run(over);
  return rest;
};
const counts = (c: Partial<Record<'changed' | 'unchanged' | 'failed' | 'wouldChange', number>>) => {
  const full = { changed: 0, unchanged: 0, failed: 0, wouldChange: 0, ...c };
  return { ...full, total: full.changed + full.unchanged + full.failed + full.wouldChange };
};

function state(id: string, result: boolean | null, over: Partial<StateResult> = {}): StateResult {
  return {
    key: `pkg_|-${id}_|-${id}_|-installed` as StateResult['key'],
    id,
    name: id,
    sls: 'nvidia',
    module: 'pkg',
    fun: 'installed',
    result,
    changes: {},
    comment: '',
    durationMs: 10,
    startedAt: T,
    runNum: 0,
    ...over,
  };
}

const evidence = (check: string, pass: boolean, over: Partial<Evidence> = {}): Evidence => ({ check, role: check.split('.')[0]!, expected: '8', seen: pass ? '8' : '7', pass, ...over });

describe('runs list: the RESULT cell, in the terms of each kind', () => {
  it.each<[string, Partial<Run>, string]>([
    ['apply with nothing to do', { summary: { mode: 'apply', counts: counts({ unchanged: 12 }) } }, '12 ok'],
    ['apply that changed things', { result: 'changed', summary: { counts: counts({ changed: 2, unchanged: 10 }) } }, '2 changed, 10 ok'],
    ['apply with a failed state', { result: 'failed', summary: { counts: counts({ failed: 1, changed: 2, unchanged: 9 }) } }, 'FAILED: 1 failed, 2 changed, 9 ok'],
    [
      'apply that failed as a whole (no state ran)',
      { result: 'failed', summary: { counts: counts({}), error: { code: 'SSH_UNREACHABLE', message: 'gpu07: connection refused' } } },
      'FAILED: SSH_UNREACHABLE',
    ],
    ['test that would change', { kind: 'test', result: 'changed', summary: { counts: counts({ wouldChange: 3, unchanged: 9 }) } }, '3 would change, 9 ok'],
    ['readiness that passed', { kind: 'readiness', summary: { ready: true, failing: [] } }, 'ready'],
    ['readiness that failed', { kind: 'readiness', result: 'failed', summary: { ready: false, failing: ['nvidia.gpu_count', 'slurm.state'] } }, 'NOT READY: nvidia.gpu_count, slurm.state'],
    ['audit, clean', { kind: 'audit', summary: { drift: false, reachable: true, wouldChange: 0, failedStates: 0, failedChecks: [] } }, 'clean'],
    [
      'audit with drift',
      { kind: 'audit', result: 'changed', summary: { drift: true, reachable: true, wouldChange: 2, failedStates: 0, failedChecks: ['nvidia.driver'] } },
      'DRIFT: 2 would change, 1 check failed',
    ],
    [
      'audit of an unreachable node',
      { kind: 'audit', result: 'failed', summary: { drift: true, reachable: false, error: { code: 'SSH_UNREACHABLE', message: 'x' } } },
      'UNREACHABLE: SSH_UNREACHABLE',
    ],
    ['a run still running', { result: 'running', summary: { server: 'a' } }, 'running'],
    // A server that stopped during the run: its next start closes it as failed with only an error in the summary.
    ['a run abandoned by its server', { kind: 'readiness', result: 'failed', summary: { server: 'a', error: { code: 'RUN_ABANDONED', message: 'the server stopped' } } }, 'NOT READY: RUN_ABANDONED'],
  ])('%s', (_name, over, cell) => {
    expect(runResultCell(run(over))).toBe(cell);
  });
});

describe('runs list: the table', () => {
  it('keeps the API order (newest first) and shows id, node, kind, start, duration and result', () => {
    const text = formatRunList([
      run({ id: 'r2', kind: 'readiness', result: 'failed', startedAt: T + 60_000, finishedAt: T + 60_000 + 4_321, summary: { ready: false, failing: ['nvidia.gpu_count'] } }),
      unfinished({ id: 'r1', result: 'running', summary: {} }),
    ]);
    const lines = text.split('\n');
    expect(lines[1]).toMatch(/ID\s+│\s+NODE\s+│\s+KIND\s+│\s+STARTED\s+│\s+DURATION\s+│\s+RESULT/);
    expect(lines[2]).toMatch(/r2\s+│\s+gpu07\s+│\s+readiness\s+│\s+2026-11-24T02:01:00Z\s+│\s+4\.32s\s+│\s+NOT READY: nvidia\.gpu_count/);
    expect(lines[3]).toMatch(/r1\s+│\s+gpu07\s+│\s+apply\s+│\s+2026-11-24T02:00:00Z\s+│\s+-\s+│\s+running/);
  });
  it('says so when nothing matches', () => {
    expect(formatRunList([])).toBe('no stored runs match\n');
  });
  it.each<[number, string]>([
    [420, '0.42s'],
    [12_340, '12.3s'],
    [245_000, '4m05s'],
    [7_380_000, '2h03m'],
  ])('duration %d ms reads %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('runs show', () => {
  it('puts failed states first with their comments, then what changed with its diff, and counts the unchanged', () => {
    const details = [
      state('base-pkgs', true, { runNum: 0 }),
      state('chrony.conf', true, { runNum: 1, module: 'file', fun: 'managed', sls: 'base', changes: { diff: '-pool a\n+server 10.0.0.1\n' } }),
      state('nvidia-driver', false, { runNum: 2, comment: 'E: Unable to locate package nvidia-driver-550' }),
    ];
    const text = formatRun(run({ result: 'failed', summary: { counts: counts({ failed: 1, changed: 1, unchanged: 1 }) }, details }));
    expect(text).toMatch(/^result\s+FAILED: 1 failed, 1 changed, 1 ok$/m);
    const failed = text.indexOf('gpu07  FAILED       pkg.installed  nvidia-driver  [nvidia]');
    const changed = text.indexOf('gpu07  changed      file.managed  chrony.conf  [base]');
    expect(failed).toBeGreaterThan(0);
    expect(changed).toBeGreaterThan(failed);
    expect(text).toContain('      E: Unable to locate package nvidia-driver-550\n');
    expect(text).toContain('      +server 10.0.0.1\n');
    expect(text).toContain('1 state unchanged\n');
    expect(text).not.toContain('base-pkgs');
  });
  it('names the error of a run that failed as a whole', () => {
    const text = formatRun(run({ result: 'failed', summary: { counts: counts({}), error: { code: 'SSH_UNREACHABLE', message: 'gpu07: connection refused' } }, details: [] }));
    expect(text).toMatch(/^error\s+SSH_UNREACHABLE: gpu07: connection refused$/m);
    expect(text).toContain('no per-state results stored\n');
  });
  it('shows a readiness run\'s evidence, failing checks first with expected, seen and the reason', () => {
    const text = formatRun(
      run({
        kind: 'readiness',
        result: 'failed',
        summary: { ready: false, failing: ['nvidia.gpu_count'], summary: 'nvidia.gpu_count: 7 of 8 GPUs' },
        details: [evidence('base.ssh', true, { expected: 'reachable', seen: 'reachable' }), evidence('nvidia.gpu_count', false, { reason: 'one GPU fell off the bus' })],
      }),
    );
    expect(text).toMatch(/^summary\s+nvidia\.gpu_count: 7 of 8 GPUs$/m);
    expect(text).toContain('checks:\nFAIL  nvidia.gpu_count: expected 8, saw 7 (one GPU fell off the bus)\npass  base.ssh: reachable\n');
  });
  it('shows an audit\'s would-change states and its checks', () => {
    const text = formatRun(
      run({
        kind: 'audit',
        result: 'changed',
        summary: { drift: true, reachable: true, wouldChange: 1, failedStates: 0, failedChecks: ['nvidia.driver'], counts: counts({ wouldChange: 1, unchanged: 5 }) },
        details: { states: [state('nvidia-driver', null, { comment: 'would install nvidia-driver' })], counts: counts({ wouldChange: 1, unchanged: 5 }), evidence: [evidence('nvidia.driver', false)] },
      }),
    );
    expect(text).toMatch(/^result\s+DRIFT: 1 would change, 1 check failed$/m);
    expect(text).toContain('gpu07  would change pkg.installed  nvidia-driver  [nvidia]\n      would install nvidia-driver\n');
    expect(text).toContain('FAIL  nvidia.driver: expected 8, saw 7\n');
  });
  it('says a running run has no results yet rather than printing nothing', () => {
    expect(formatRun(unfinished({ result: 'running', summary: { server: 'a' } }))).toContain('no results yet: the run is still running');
  });
});

describe('runs list: the command line', () => {
  it.each<[string[], { kind?: string; limit?: number }, string]>([
    [[], {}, ''],
    [['gpu07'], {}, '?targets=gpu07'],
    [['gpu[01-04]', 'group:head'], { kind: 'audit', limit: 5 }, '?targets=gpu%5B01-04%5D%2Cgroup%3Ahead&kind=audit&limit=5'],
  ])('%j %j -> %s', (targets, opts, query) => {
    expect(runsQuery(targets, opts)).toBe(query);
  });
  it.each(['0', '1001', '5x', '-1', '1e2', ''])('refuses --limit %j as a usage error', (text) => {
    expect(() => parseRunLimit(text)).toThrow(UsageError);
  });
  it('takes --limit 1 and 1000', () => {
    expect([parseRunLimit('1'), parseRunLimit('1000')]).toEqual([1, 1000]);
  });
});
