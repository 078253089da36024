import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { latestEventId } from '../../server/net/http/dashboard/event-cursor.js';
import { evidenceRows, newestRun, runHeader, stateRows } from '../../server/net/http/dashboard/run-view.js';
import { cookieValue, issueSession, sessionKey, sessionValid, SESSION_SECONDS } from '../../server/net/http/dashboard/session.js';
import { CELL_STATES, cellView, describeEvent, downloadProgress, formatBytes, rackGrid, stateClass } from '../../server/net/http/dashboard/view-model.js';
import { LIFECYCLE_STATES } from '../../server/model/lifecycle.js';
import type { NodeView } from '../../server/services/node-view.js';
import type { Run, StoredEvent } from '../../server/store/types.js';
import type { StateResult } from '../../server/state/types.js';

function view(name: string, extra: Partial<NodeView> = {}): NodeView {
  return { name, inInventory: true, macs: [], roles: [], labels: {}, state: 'assigned', reimageRequested: false, facts: {}, ...extra };
}

describe('rack grid', () => {
  const views = [
    view('a1', { rack: 'r10', slot: 1 }),
    view('b1', { rack: 'r2', slot: 1 }),
    view('b3', { rack: 'r2', slot: 3 }),
    view('b3x', { rack: 'r2', slot: 3 }),
    view('r2loose', { rack: 'r2' }),
    view('head', {}),
    view('52:54:00:00:00:99', { inInventory: false, state: 'discovered' }),
  ];
  const grid = rackGrid(views);

  it('puts racks in natural order as columns and used slots, highest first, as rows', () => {
    expect(grid.racks).toEqual(['r2', 'r10']);
    expect(grid.rows.map((r) => r.slot)).toEqual([3, 1, null]);
  });
  it('places every racked node in its rack column and slot row, sharing cells when slots collide', () => {
    const names = (slot: number | null) => grid.rows.find((r) => r.slot === slot)!.cells.map((c) => c.map((v) => v.name));
    expect(names(3)).toEqual([['b3', 'b3x'], []]);
    expect(names(1)).toEqual([['b1'], ['a1']]);
    expect(names(null)).toEqual([['r2loose'], []]);
  });
  it('keeps unracked inventory nodes and discovered machines apart', () => {
    expect(grid.unracked.map((c) => c.name)).toEqual(['head']);
    expect(grid.discovered.map((c) => c.name)).toEqual(['52:54:00:00:00:99']);
  });
  it('shows every node exactly once', () => {
    const shown = [...grid.rows.flatMap((r) => r.cells.flat()), ...grid.unracked, ...grid.discovered].map((c) => c.name).sort();
    expect(shown).toEqual(views.map((v) => v.name).sort());
  });
  it('has no slot-less row when every racked node has a slot', () => {
    expect(rackGrid([view('x', { rack: 'r1', slot: 4 })]).rows.map((r) => r.slot)).toEqual([4]);
  });
});

describe('cell colours', () => {
  it('has a class for every lifecycle state plus unknown, each styled in dashboard.css', () => {
    expect(CELL_STATES).toEqual([...LIFECYCLE_STATES, 'unknown']);
    const css = readFileSync(path.resolve(import.meta.dirname, '../../ui/static/dashboard.css'), 'utf8');
    for (const state of CELL_STATES) expect(css).toMatch(new RegExp(`\\.${stateClass(state)} \\{ background: var\\(--${state}\\)`));
    // Distinct colours: two states that look alike would hide a transition.
    const colours = CELL_STATES.map((s) => new RegExp(`--${s}: (#[0-9a-f]{6});`).exec(css)?.[1]);
    expect(colours.every(Boolean)).toBe(true);
    expect(new Set(colours).size).toBe(CELL_STATES.length);
  });
  it('says why a node failed and where provisioning is', () => {
    expect(cellView(view('n', { state: 'failed', reason: 'disk not found', stage: 'partition' })).detail).toBe('failed: disk not found');
    expect(cellView(view('n', { state: 'provisioning', stage: 'download' })).detail).toBe('provisioning: download');
    expect(cellView(view('n', { state: 'ready', reimageRequested: true }))).toMatchObject({ stateClass: 'state-ready', detail: 'ready (reimage requested)', reimageRequested: true });
  });
});

describe('events and download progress', () => {
  const download = { type: 'stage' as const, stage: 'download', detail: { source: 'swarm', bytes: 3 * 1024 ** 3, size: 12 * 1024 ** 3, rate: 100 * 1024 ** 2, upload_rate: 0, peers: 7 } };
  it('reads the installer report', () => {
    expect(downloadProgress(download, 5)).toEqual({ at: 5, source: 'swarm', bytes: 3 * 1024 ** 3, size: 12 * 1024 ** 3, percent: 25, rate: 100 * 1024 ** 2, uploadRate: 0, peers: 7 });
    expect(downloadProgress({ type: 'stage', stage: 'verify' }, 5)).toBeUndefined();
    expect(downloadProgress({ type: 'stage', stage: 'download', detail: { bytes: 'x', size: -1 } }, 5)).toEqual({ at: 5 });
  });
  it('describes events in one line', () => {
    expect(describeEvent(download)).toBe('download: 3.0 GiB of 12.0 GiB (25%), at 100.0 MiB/s, 7 peers, uploading 0 B/s, via swarm');
    expect(describeEvent({ type: 'stage', stage: 'plan', detail: { image: 'debian12', disk: '/dev/sda' } })).toBe('plan: image=debian12 disk=/dev/sda');
    expect(describeEvent({ type: 'failed', reason: 'no disk', stage: 'partition' })).toBe('no disk (stage partition)');
    expect(describeEvent({ type: 'assigned', group: 'gpu' })).toBe('group gpu');
    expect(describeEvent({ type: 'ready' })).toBe('');
  });
  it('formats bytes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
  });
});

describe('run views', () => {
  const result = (over: Partial<StateResult>): StateResult => ({
    key: 'k', id: 'id', name: 'id', sls: 'base', module: 'pkg', fun: 'installed', result: true, changes: {}, comment: '', durationMs: 1.4, startedAt: 0, runNum: 0, ...over,
  });
  it('turns StateResult[] into rows in run order with outcomes, change summaries and diffs', () => {
    const rows = stateRows([
      result({ id: 'conf', module: 'file', fun: 'managed', name: '/etc/x', runNum: 2, changes: { diff: '--- a\n+++ b\n', mode: '0644' }, comment: 'File updated' }),
      result({ id: 'nginx', runNum: 0, changes: { nginx: { old: '', new: '1.22' } } }),
      result({ id: 'svc', module: 'service', fun: 'running', runNum: 1, result: false, comment: 'unit not found' }),
      result({ id: 'ok', runNum: 3 }),
      result({ id: 'maybe', runNum: 4, result: null, changes: { pkgs: ['a', 'b'] } }),
      'garbage',
    ]);
    expect(rows.map((r) => [r.id, r.outcome])).toEqual([['nginx', 'changed'], ['svc', 'failed'], ['conf', 'changed'], ['ok', 'unchanged'], ['maybe', 'would change']]);
    expect(rows[0]).toMatchObject({ function: 'pkg.installed', changes: 'nginx: old, new', durationMs: 1 });
    expect(rows[2]).toMatchObject({ function: 'file.managed', name: '/etc/x', changes: 'mode: 0644', diff: '--- a\n+++ b\n', comment: 'File updated' });
    expect(rows[4]!.changes).toBe('pkgs: a, b');
    expect(stateRows({ not: 'a list' })).toEqual([]);
  });
  it('reads readiness evidence generically', () => {
    const rows = evidenceRows([
      { check: 'gpu.count', role: 'nvidia', expected: 8, seen: 7, pass: false, reason: 'one GPU missing' },
      { check: 'munge', role: 'slurm-compute', expected: { active: true }, seen: 'active', pass: true },
      { check: 'odd' },
    ]);
    expect(rows).toEqual([
      { check: 'gpu.count', role: 'nvidia', expected: '8', seen: '7', pass: false, reason: 'one GPU missing' },
      { check: 'munge', role: 'slurm-compute', expected: '{"active":true}', seen: 'active', pass: true, reason: '' },
      { check: 'odd', role: '', expected: '', seen: '', reason: '' },
    ]);
    expect(evidenceRows({ evidence: [{ check: 'c', pass: true }] })).toHaveLength(1);
    expect(evidenceRows('nothing')).toEqual([]);
  });
  it('summarises a run header with its error pulled out', () => {
    const run: Run = { id: 'r1', node: 'n', kind: 'apply', result: 'failed', startedAt: 0, finishedAt: 1500, summary: { mode: 'apply', counts: { changed: 1, failed: 1 }, error: { code: 'STATE_TRANSPORT', message: 'connection lost' } }, details: [] };
    expect(runHeader(run)).toEqual({ id: 'r1', kind: 'apply', result: 'failed', startedAt: '1970-01-01T00:00:00.000Z', finishedAt: '1970-01-01T00:00:01.500Z', durationMs: 1500, summary: 'mode=apply counts: changed=1 failed=1', error: 'STATE_TRANSPORT connection lost' });
    const older = { ...run, id: 'old', startedAt: -5 };
    expect(newestRun([older, undefined, run])?.id).toBe('r1');
  });
});

describe('latest event id', () => {
  const storeWith = (ids: number[]) => {
    let queries = 0;
    return {
      get queries() {
        return queries;
      },
      async listEvents(q: { afterId?: number; limit?: number } = {}): Promise<StoredEvent[]> {
        queries++;
        return ids.filter((id) => id > (q.afterId ?? 0)).slice(0, q.limit).map((id) => ({ id, node: 'n', at: 0, event: { type: 'ready' } }));
      },
    };
  };
  it('finds the newest id, with gaps, in few queries', async () => {
    expect(await latestEventId(storeWith([]))).toBe(0);
    expect(await latestEventId(storeWith([1]))).toBe(1);
    expect(await latestEventId(storeWith([3, 4, 9, 17]))).toBe(17);
    const big = storeWith([...Array.from({ length: 1000 }, (_, i) => i + 1), 250_001, 250_007]);
    expect(await latestEventId(big)).toBe(250_007);
    expect(big.queries).toBeLessThan(60);
  });
});

describe('dashboard session', () => {
  const key = sessionKey('admin-token-value');
  it('accepts its own unexpired sessions only', () => {
    const now = 1_700_000_000_000;
    const s = issueSession(key, now);
    expect(s).not.toContain('admin-token-value');
    expect(sessionValid(key, s, now + 1000)).toBe(true);
    expect(sessionValid(key, s, now + SESSION_SECONDS * 1000 + 1)).toBe(false);
    expect(sessionValid(sessionKey('another-token'), s, now)).toBe(false);
    const [v, exp, nonce, mac] = s.split('.');
    expect(sessionValid(key, [v, Number(exp) + 10_000_000, nonce, mac].join('.'), now)).toBe(false);
    expect(sessionValid(key, undefined)).toBe(false);
    expect(sessionValid(key, 'v1.x.y')).toBe(false);
    // Only the spelling issueSession wrote: padding, a stray character or the last character's unused bits made
    // another string that decoded to the same signature.
    for (const respelt of [`${s}=`, `${s}!`, `${s.slice(0, -1)}${String.fromCharCode(s.charCodeAt(s.length - 1) ^ 1)}`]) expect(sessionValid(key, respelt, now + 1000)).toBe(false);
  });
  it('reads one cookie from a Cookie header', () => {
    expect(cookieValue('a=1; rackseed_ui=v1.2.3.4; b=2', 'rackseed_ui')).toBe('v1.2.3.4');
    expect(cookieValue('xrackseed_ui=1', 'rackseed_ui')).toBeUndefined();
    expect(cookieValue(undefined, 'rackseed_ui')).toBeUndefined();
  });
});
