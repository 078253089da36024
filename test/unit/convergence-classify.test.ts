import { describe, expect, it } from 'vitest';
import { classifyApply, statesFailureReason, unreachableReason } from '../../server/services/convergence-classify.js';
import type { NodeRunReport } from '../../server/services/state-service.js';
import type { StateResult } from '../../server/state/types.js';

const counts: NodeRunReport['counts'] = { changed: 0, unchanged: 0, failed: 0, wouldChange: 0, total: 0 };

function state(id: string, result: boolean | null, comment = ''): StateResult {
  return { key: `file_|-${id}_|-${id}_|-managed`, id, name: id, sls: 'conv', module: 'file', fun: 'managed', result, changes: {}, comment, durationMs: 1, startedAt: 0, runNum: 0 };
}

function report(over: Partial<NodeRunReport>): NodeRunReport {
  return { node: 'n1', runId: 'run-1', mode: 'apply', result: 'failed', counts, durationMs: 5, states: [], ...over };
}

describe('classifying a state apply for convergence', () => {
  it('success and changed converge', () => {
    expect(classifyApply(report({ result: 'success', states: [state('a', true)] }))).toEqual({ kind: 'ok' });
    expect(classifyApply(report({ result: 'changed', states: [state('a', true)] }))).toEqual({ kind: 'ok' });
  });

  it('no connection yet (refused, handshake timeout) is transient', () => {
    const refused = report({ error: { code: 'STATE_TRANSPORT', message: 'n1: cannot connect to 10.0.0.5:22: connect ECONNREFUSED 10.0.0.5:22' } });
    expect(classifyApply(refused)).toEqual({ kind: 'transient', reason: 'STATE_TRANSPORT: n1: cannot connect to 10.0.0.5:22: connect ECONNREFUSED 10.0.0.5:22' });
    const handshake = report({ error: { code: 'STATE_TRANSPORT', message: 'n1: cannot connect to 10.0.0.5:22: Timed out while waiting for handshake' } });
    expect(classifyApply(handshake).kind).toBe('transient');
  });

  it('a link that dropped mid-run is transient, even though the state it interrupted failed', () => {
    const dropped = report({ error: { code: 'STATE_TRANSPORT', message: 'connection lost' }, states: [state('a', true), state('b', false, 'connection lost')] });
    expect(classifyApply(dropped).kind).toBe('transient');
  });

  it('a node too busy to answer fact collection in time is transient; a timeout next to a failed state is not', () => {
    expect(classifyApply(report({ error: { code: 'STATE_TIMEOUT', message: 'facts: timed out' } })).kind).toBe('transient');
    expect(classifyApply(report({ error: { code: 'STATE_TIMEOUT', message: 'x' }, states: [state('hang', false, 'timed out after 600 s')] })).kind).toBe('permanent');
  });

  it('a failed state, a compile error, a host key problem and a failhard abort are permanent', () => {
    const failing = report({ states: [state('ok', true), state('/etc/app.conf', false, 'source rackseed://app/missing not found\nmore'), state('svc', false, 'requisite failed')] });
    expect(classifyApply(failing)).toEqual({ kind: 'permanent', reason: 'states: 2 failed: /etc/app.conf: source rackseed://app/missing not found (run run-1)' });
    for (const code of ['STATE_COMPILE', 'SLS_RENDER', 'SSH_HOST_KEY_MISMATCH', 'SSH_HOST_KEY_UNKNOWN', 'STATE_FAILHARD', 'INTERNAL']) {
      const r = report({ error: { code, message: `${code} happened` } });
      expect(classifyApply(r), code).toEqual({ kind: 'permanent', reason: `states: ${code}: ${code} happened (run run-1)` });
    }
  });

  it("a failed command's reason is its exit code and the last line it wrote to stderr, not its whole script (after retries too)", () => {
    const cmd = (stderr: string, changes: Record<string, unknown> = { retcode: 1, stdout: '' }): StateResult => ({
      ...state('k3s-join-server', false, 'Attempt 1: returned a result of false, with the comment: Command "hp=10.0.3.1:6443; case ..." failed with exit code 1\nAttempt 30: Command "hp=..." failed with exit code 1'),
      module: 'cmd',
      fun: 'run',
      changes: { ...changes, stderr },
    });
    const waiting = report({ states: [cmd('timeout: x\nK3s server 10.0.3.1:6443 does not answer yet: k3s-agent is started and keeps trying to join by itself\n'), state('k3s-service', false, 'One or more requisite failed')] });
    expect(statesFailureReason(waiting)).toBe('states: 2 failed: k3s-join-server: exit 1: K3s server 10.0.3.1:6443 does not answer yet: k3s-agent is started and keeps trying to join by itself (run run-1)');
    // Nothing on stderr: the comment's first line, as before.
    expect(statesFailureReason(report({ states: [cmd('')] }))).toBe('states: 1 failed: k3s-join-server: Attempt 1: returned a result of false, with the comment: Command "hp=10.0.3.1:6443; case ..." failed with exit code 1 (run run-1)');
  });

  it.each([
    ['a trailing warning is labelled with the exit code, not taken for the cause', 'E: unable to locate package foo\nW: apt does not have a stable CLI interface', { retcode: 100 }, 'exit 100: W: apt does not have a stable CLI interface'],
    ["a `set -x` trace is left out: the command's own last words", "+ test -f /x\n+ echo 'no /x' >&2\nno /x\n+ exit 3", { retcode: 3 }, 'exit 3: no /x'],
    ['nested trace levels too', '++ hostname\nboom\n+++ date', { retcode: 2 }, 'exit 2: boom'],
    ['only trace on stderr: the comment', '+ false', { retcode: 1 }, 'Command "x" failed with exit code 1'],
    ['no exit code recorded: the line alone', 'it broke', {}, 'it broke'],
  ])('%s', (_what, stderr, changes, why) => {
    const failed: StateResult = { ...state('x', false, 'Command "x" failed with exit code 1\nmore'), module: 'cmd', fun: 'run', changes: { ...changes, stderr } };
    expect(statesFailureReason(report({ states: [failed] }))).toBe(`states: 1 failed: x: ${why} (run run-1)`);
  });

  it('keeps reasons to one bounded line', () => {
    const long = report({ states: [state('x', false, 'y'.repeat(5000))] });
    const reason = statesFailureReason(long);
    expect(reason.length).toBeLessThanOrEqual(2000);
    expect(reason.endsWith('…')).toBe(true);
    expect(statesFailureReason(report({ runId: '' }))).toBe('states: run failed');
    expect(unreachableReason(10, 'STATE_TRANSPORT: refused', 'run-9')).toBe('states: not reachable after 10 attempt(s): STATE_TRANSPORT: refused (run run-9)');
  });
});
