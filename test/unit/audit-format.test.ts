import { describe, expect, it } from 'vitest';
import { auditExitCode, formatAudit } from '../../server/cli/commands/audit.js';
import { auditRunResult, buildAuditReport, summarizeAudit, type AuditNodeReport } from '../../server/services/audit-report.js';
import type { Evidence } from '../../server/readiness/types.js';
import type { StateResult } from '../../server/state/types.js';

function state(over: Partial<StateResult> & Pick<StateResult, 'id' | 'module' | 'fun' | 'result'>): StateResult {
  return { key: `${over.module}_|-${over.id}_|-${over.name ?? over.id}_|-${over.fun}`, name: over.id, sls: 'audit.common', changes: {}, comment: '', durationMs: 1, startedAt: 0, runNum: 0, ...over };
}

const ok = (id: string): StateResult => state({ id, module: 'file', fun: 'managed', result: true, comment: 'File is in the correct state' });
const pass = (check: string): Evidence => ({ check, role: 'base', expected: 'x', seen: 'x', pass: true });

const DIFF = '--- /etc/app.conf\n+++ /etc/app.conf\n@@ -1,2 +1,2 @@\n # managed\n-level = debug\n+level = info\n';

function report(node: string, states: StateResult[], evidence: Evidence[], extra: { reachable?: boolean; error?: { code: string; message: string } } = {}): AuditNodeReport {
  return buildAuditReport({ node, runId: `run-${node}`, reachable: extra.reachable ?? true, states, evidence, startedAt: 1000, finishedAt: 1500, error: extra.error });
}

const drifted = report(
  'gpu01',
  [
    ok('/etc/hosts'),
    state({ id: '/etc/app.conf', module: 'file', fun: 'managed', result: null, comment: 'File /etc/app.conf would be updated', changes: { diff: DIFF } }),
    state({ id: 'slurmd', module: 'service', fun: 'running', result: null, sls: 'slurm.compute', comment: 'Service slurmd would be started', changes: { slurmd: true } }),
    state({ id: 'bad', module: 'cmd', fun: 'run', result: false, comment: 'unless: command failed' }),
  ],
  [pass('base.ssh'), { check: 'base.hostname', role: 'base', expected: 'gpu01', seen: 'localhost', pass: false, reason: 'the host name is "localhost", not the node name "gpu01"' }],
);
const clean = report('gpu02', [ok('/etc/hosts'), ok('/etc/app.conf')], [pass('base.ssh'), pass('base.hostname'), pass('base.hosts')]);
const gone = report('gpu03', [], [{ check: 'base.ssh', role: 'base', expected: 'reachable over SSH', seen: 'unreachable', pass: false, reason: 'STATE_TRANSPORT: gpu03: cannot connect' }], {
  reachable: false,
  error: { code: 'STATE_TRANSPORT', message: 'gpu03: cannot connect to 10.0.0.13:22: ECONNREFUSED' },
});

describe('audit report and `rackseed audit` output', () => {
  it('classifies states and checks: would change, failed, failed checks; ok states only counted', () => {
    expect(drifted.drift).toBe(true);
    expect(drifted.wouldChange.map((s) => s.id)).toEqual(['/etc/app.conf', 'slurmd']);
    expect(drifted.failedStates.map((s) => s.id)).toEqual(['bad']);
    expect(drifted.failedChecks.map((e) => e.check)).toEqual(['base.hostname']);
    expect(drifted.counts).toMatchObject({ total: 4, unchanged: 1, wouldChange: 2, failed: 1 });
    expect(clean.drift).toBe(false);
    // A node that could not be looked at is never clean.
    expect(gone.drift).toBe(true);
    expect(report('gpu04', [ok('/etc/hosts')], [pass('base.ssh')], { error: { code: 'SLS_RENDER', message: 'x' } }).drift).toBe(true);
  });

  it('prints one block per node (by name) with the predicted diff and the failed checks, then the summary line', () => {
    const summary = summarizeAudit([gone, clean, drifted]);
    // gpu01's cmd.run could not be evaluated: drifted, and not fully audited.
    expect(summary).toEqual({ type: 'summary', nodes: 3, drifted: 1, clean: 1, unreachable: 1, incomplete: 1 });
    expect(formatAudit([gone, clean, drifted], summary)).toBe(
      [
        'gpu01: DRIFT: 2 states would change, 1 state failed, 1 check failed',
        'gpu01  would change file.managed  /etc/app.conf  [audit.common]',
        '      File /etc/app.conf would be updated',
        '      --- /etc/app.conf',
        '      +++ /etc/app.conf',
        '      @@ -1,2 +1,2 @@',
        '       # managed',
        '      -level = debug',
        '      +level = info',
        'gpu01  would change service.running  slurmd  [slurm.compute]',
        '      Service slurmd would be started',
        '      slurmd: true',
        'gpu01  FAILED       cmd.run  bad  [audit.common]',
        '      unless: command failed',
        'gpu01  check failed  base.hostname: expected gpu01, saw localhost (the host name is "localhost", not the node name "gpu01")',
        '',
        'gpu02: clean (2 states, 3 checks)',
        '',
        'gpu03: UNREACHABLE: STATE_TRANSPORT: gpu03: cannot connect to 10.0.0.13:22: ECONNREFUSED',
        '',
        '3 nodes audited: 1 drifted, 1 clean, 1 unreachable; 1 not fully audited',
        '',
      ].join('\n'),
    );
  });

  it('says when a reachable node was only partly audited', () => {
    const partial = report('gpu04', [], [pass('base.ssh')], { error: { code: 'SLS_RENDER', message: 'top.sls:3: unknown filter' } });
    const summary = summarizeAudit([partial]);
    expect(summary).toMatchObject({ drifted: 1, incomplete: 1 });
    expect(formatAudit([partial], summary)).toBe(
      'gpu04: DRIFT: 0 states would change, 0 checks failed; not fully audited: SLS_RENDER: top.sls:3: unknown filter\n\n1 node audited: 1 drifted, 0 clean, 0 unreachable; 1 not fully audited\n',
    );
  });

  it('exits 0 when clean, 3 on drift, 1 when a node could not be audited completely, as the stored run says', () => {
    const onlyChanges = report('gpu05', [ok('/etc/hosts'), state({ id: 'slurmd', module: 'service', fun: 'running', result: null, changes: { slurmd: true } })], [pass('base.ssh')]);
    expect(auditExitCode([clean])).toBe(0);
    expect(auditExitCode([])).toBe(0);
    expect(auditExitCode([clean, onlyChanges])).toBe(3);
    expect(auditRunResult(onlyChanges)).toBe('changed');
    expect(summarizeAudit([onlyChanges])).toMatchObject({ drifted: 1, incomplete: 0 });
    // A state whose check failed hides what that part of the node looks like: as `state test`, exit 1, run failed.
    expect(auditExitCode([clean, drifted])).toBe(1);
    expect(auditRunResult(drifted)).toBe('failed');
    expect(auditExitCode([clean, onlyChanges, gone])).toBe(1);
    expect(auditRunResult(clean)).toBe('success');
  });
});
