import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../server/store/types.js';
import { cliAgainst, cliProcess as runCli, type CliResult } from '../support/cli.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * `rackseed runs list|show` against a real server (HTTP, admin token, store) holding runs as the services store them:
 * an apply with a failed state, a readiness run that found a GPU missing, a clean audit, a run of another node.
 */
let srv: TestServer;
const T = Date.UTC(2026, 10, 24, 2, 0, 0);

const counts = { changed: 1, unchanged: 1, failed: 1, wouldChange: 0, total: 3 };
function state(id: string, result: boolean | null, runNum: number, extra: Record<string, unknown> = {}) {
  return { key: `pkg_|-${id}_|-${id}_|-installed`, id, name: id, sls: 'nvidia', module: 'pkg', fun: 'installed', result, changes: {}, comment: '', durationMs: 5, startedAt: T, runNum, ...extra };
}

async function stored(run: Omit<Run, 'result' | 'finishedAt'>, end: Pick<Run, 'result'> & { finishedAt: number }): Promise<void> {
  await srv.store.createRun({ ...run, result: 'running', summary: {}, details: [] });
  await srv.store.finishRun(run.id, { result: end.result, finishedAt: end.finishedAt, summary: run.summary, details: run.details });
}

beforeAll(async () => {
  srv = await startTestServer({ inventoryFixture: 'api/inventory.yaml' });
  await stored(
    {
      id: 'apply-gpu01',
      node: 'gpu01',
      kind: 'apply',
      startedAt: T,
      summary: { mode: 'apply', counts },
      details: [
        state('base-pkgs', true, 0),
        state('chrony.conf', true, 1, { module: 'file', fun: 'managed', sls: 'base', changes: { diff: '-pool pool.ntp.org\n+server 10.0.0.1\n' } }),
        state('nvidia-driver', false, 2, { comment: 'E: Unable to locate package nvidia-driver-550' }),
      ],
    },
    { result: 'failed', finishedAt: T + 83_000 },
  );
  await stored(
    {
      id: 'ready-gpu01',
      node: 'gpu01',
      kind: 'readiness',
      startedAt: T + 100_000,
      summary: { ready: false, failing: ['nvidia.gpu_count'], summary: 'nvidia.gpu_count: 7 of 8 GPUs', checks: 2, failed: 1 },
      details: [
        { check: 'base.ssh', role: 'base', expected: 'reachable', seen: 'reachable', pass: true },
        { check: 'nvidia.gpu_count', role: 'nvidia', expected: '8', seen: '7', pass: false, reason: 'a GPU is missing' },
      ],
    },
    { result: 'failed', finishedAt: T + 104_000 },
  );
  await stored(
    { id: 'apply-gpu02', node: 'gpu02', kind: 'apply', startedAt: T + 200_000, summary: { mode: 'apply', counts: { ...counts, failed: 0, changed: 0, unchanged: 3 } }, details: [] },
    { result: 'success', finishedAt: T + 210_000 },
  );
  await stored(
    {
      id: 'audit-head01',
      node: 'head01',
      kind: 'audit',
      startedAt: T + 300_000,
      summary: { drift: false, reachable: true, wouldChange: 0, failedStates: 0, failedChecks: [], counts: { ...counts, failed: 0, changed: 0, unchanged: 3 }, checks: 1 },
      details: { states: [], counts, evidence: [{ check: 'base.ssh', role: 'base', expected: 'reachable', seen: 'reachable', pass: true }] },
    },
    { result: 'success', finishedAt: T + 305_000 },
  );
});
afterAll(async () => {
  await srv?.stop();
});

const cli = (...args: string[]): Promise<string> => cliAgainst(srv, args);

const cliProcess = (...args: string[]): Promise<CliResult> => runCli(['--server', srv.httpUrl, '--token', srv.adminToken, ...args]);

const ids = (table: string): string[] => [...table.matchAll(/^│ (\S+)\s+│/gm)].map((m) => m[1]!).filter((id) => id !== 'ID');

describe('rackseed runs', () => {
  it('runs list: every stored run, newest first, with what each found', async () => {
    const out = await cli('runs', 'list');
    expect(ids(out)).toEqual(['audit-head01', 'apply-gpu02', 'ready-gpu01', 'apply-gpu01']);
    expect(out).toMatch(/apply-gpu01\s+│\s+gpu01\s+│\s+apply\s+│\s+2026-11-24T02:00:00Z\s+│\s+1m23s\s+│\s+FAILED: 1 failed, 1 changed, 1 ok/);
    expect(out).toMatch(/ready-gpu01\s+│\s+gpu01\s+│\s+readiness\s+│.*│\s+NOT READY: nvidia\.gpu_count/);
    expect(out).toMatch(/audit-head01\s+│\s+head01\s+│\s+audit\s+│.*│\s+clean/);
  });

  it('runs list TARGET...: targets as the fleet verbs take them (hostlists, groups), with --kind and --limit', async () => {
    expect(ids(await cli('runs', 'list', 'gpu[01-02]'))).toEqual(['apply-gpu02', 'ready-gpu01', 'apply-gpu01']);
    expect(ids(await cli('runs', 'list', 'group:gpu', '--kind', 'apply'))).toEqual(['apply-gpu02', 'apply-gpu01']);
    expect(ids(await cli('runs', 'list', 'gpu01', 'head01', '--limit', '2'))).toEqual(['audit-head01', 'ready-gpu01']);
    expect(await cli('runs', 'list', 'gpu02', '--kind', 'audit')).toBe('no stored runs match\n');
  });

  it('runs list --json: the API\'s answer', async () => {
    const json = JSON.parse(await cli('--json', 'runs', 'list', 'gpu01', '--kind', 'readiness')) as { runs: Run[] };
    expect(json.runs).toEqual([expect.objectContaining({ id: 'ready-gpu01', node: 'gpu01', kind: 'readiness', result: 'failed', finishedAt: T + 104_000 })]);
  });

  it('runs show ID: the failed state first with its comment, then the change with its diff', async () => {
    const out = await cli('runs', 'show', 'apply-gpu01');
    expect(out).toMatch(/^result\s+FAILED: 1 failed, 1 changed, 1 ok$/m);
    expect(out).toMatch(/^duration\s+1m23s$/m);
    expect(out).toContain(
      'states:\ngpu01  FAILED       pkg.installed  nvidia-driver  [nvidia]\n      E: Unable to locate package nvidia-driver-550\n' +
        'gpu01  changed      file.managed  chrony.conf  [base]\n      -pool pool.ntp.org\n      +server 10.0.0.1\n1 state unchanged\n',
    );
  });

  it('runs show ID of a readiness run: its evidence, failing checks first', async () => {
    const out = await cli('runs', 'show', 'ready-gpu01');
    expect(out).toMatch(/^summary\s+nvidia\.gpu_count: 7 of 8 GPUs$/m);
    expect(out).toContain('checks:\nFAIL  nvidia.gpu_count: expected 8, saw 7 (a GPU is missing)\npass  base.ssh: reachable\n');
    const json = JSON.parse(await cli('--json', 'runs', 'show', 'ready-gpu01')) as { run: Run };
    expect(json.run).toMatchObject({ id: 'ready-gpu01', summary: { failing: ['nvidia.gpu_count'] } });
  });

  it('a run id that does not exist exits 1 with the API\'s one-line reason; a bad option or target is refused', async () => {
    const missing = await cliProcess('runs', 'show', 'no-such-run');
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toBe('rackseed: no run "no-such-run"\n');
    const unknown = await cliProcess('runs', 'list', 'gpu99');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^rackseed: .*gpu99.*\n$/);
    expect((await cliProcess('runs', 'list', '--kind', 'install')).code).toBe(2);
    expect((await cliProcess('runs', 'list', '--limit', '0')).code).toBe(2);
    expect((await cliProcess('runs', 'show', '')).code).toBe(2);
  });

  it('the API takes ?targets= (resolved against the inventory) but not with ?node=', async () => {
    const get = (q: string) => fetch(`${srv.httpUrl}/api/v1/runs${q}`, { headers: { authorization: `Bearer ${srv.adminToken}` } });
    const byTargets = (await (await get('?targets=gpu%5B01-02%5D&kind=apply')).json()) as { runs: Run[] };
    expect(byTargets.runs.map((r) => r.id)).toEqual(['apply-gpu02', 'apply-gpu01']);
    const both = await get('?targets=gpu01&node=gpu02');
    expect(both.status).toBe(400);
    expect(((await both.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
  });
});
