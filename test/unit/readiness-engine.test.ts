import { describe, expect, it } from 'vitest';
import { RackseedError } from '../../server/model/errors.js';
import { collectEvidence, verdict } from '../../server/readiness/engine.js';
import type { CheckSpec, RoleChecks } from '../../server/readiness/types.js';
import { FakeTransport } from '../../server/state/transport/fake.js';
import { context } from '../fixtures/readiness/load.js';

const echo = (id: string, command: string): CheckSpec => ({
  id,
  role: 'test',
  command: () => command,
  evaluate: (output) => [{ check: id, role: 'test', expected: 'ok', seen: output.stdout.trim(), pass: output.stdout.trim() === 'ok' }],
});

describe('readiness engine', () => {
  it('runs one exec per check with the timeout, evaluates each, keeps static evidence first per role', async () => {
    const seen: Array<{ command: string }> = [];
    const transport = new FakeTransport('gpu01', { handler: (command) => (seen.push({ command }), { code: 0, stdout: command === 'a' ? 'ok\n' : 'bad\n', stderr: '' }) });
    const roles: RoleChecks[] = [
      { role: 'test', checks: [echo('t.a', 'a'), echo('t.b', 'b')], static: [{ check: 't.declared', role: 'test', expected: '-', seen: '-', pass: true }] },
    ];
    const evidence = await collectEvidence(context(), transport, { timeoutMs: 1234 }, roles);
    expect(seen.map((s) => s.command)).toEqual(['a', 'b']);
    expect(evidence.map((e) => [e.check, e.pass])).toEqual([
      ['t.declared', true],
      ['t.a', true],
      ['t.b', false],
    ]);
    expect(verdict(evidence)).toMatchObject({ ready: false, summary: 'readiness: t.b (expected ok, saw bad)' });
  });

  it("a check's own timeout applies only when smaller than the operator's command timeout", async () => {
    const limits: Record<string, number | undefined> = {};
    const transport = new FakeTransport('gpu01', { handler: (command, _t, options) => ((limits[command] = options.timeoutMs), { code: 0, stdout: 'ok', stderr: '' }) });
    const bounded: CheckSpec = { ...echo('t.bounded', 'bounded'), timeoutMs: 60_000 };
    const roles: RoleChecks[] = [{ role: 'test', checks: [bounded, echo('t.plain', 'plain')] }];
    await collectEvidence(context(), transport, { timeoutMs: 600_000 }, roles);
    expect(limits).toEqual({ bounded: 60_000, plain: 600_000 });
    await collectEvidence(context(), transport, { timeoutMs: 10_000 }, roles);
    expect(limits).toEqual({ bounded: 10_000, plain: 10_000 });
  });

  it('a timed-out command or a dropped connection fails that check; later checks still report', async () => {
    const transport = new FakeTransport('gpu01', {
      handler: (command) => {
        if (command === 'slow') throw new RackseedError('STATE_TIMEOUT', 'gpu01: command timed out after 1000 ms');
        return { code: 0, stdout: 'ok', stderr: '' };
      },
    });
    const evidence = await collectEvidence(context(), transport, {}, [{ role: 'test', checks: [echo('t.slow', 'slow'), echo('t.fast', 'fast')] }]);
    expect(evidence).toEqual([
      { check: 't.slow', role: 'test', expected: 'collection command runs', seen: 'STATE_TIMEOUT', pass: false, reason: 't.slow: gpu01: command timed out after 1000 ms', notRun: true },
      { check: 't.fast', role: 'test', expected: 'ok', seen: 'ok', pass: true },
    ]);
  });

  it('an evaluation that throws is a failed check, not a crashed run; one that returns nothing passes as "nothing to check"', async () => {
    const transport = new FakeTransport('gpu01');
    const throwing: CheckSpec = { id: 't.throw', role: 'test', command: () => 'x', evaluate: () => { throw new Error('boom'); } };
    const empty: CheckSpec = { id: 't.empty', role: 'test', command: () => 'y', evaluate: () => [] };
    const evidence = await collectEvidence(context(), transport, {}, [{ role: 'test', checks: [throwing, empty] }]);
    expect(evidence.map((e) => [e.check, e.pass, e.seen])).toEqual([
      ['t.throw', false, 'evaluation error'],
      ['t.empty', true, 'nothing to check'],
    ]);
  });

  it('by default the checks come from the node context: base runs uname and /etc/hosts', async () => {
    const transport = new FakeTransport('gpu01', {
      handler: (command) => (command === 'uname -n' ? { code: 0, stdout: 'gpu01\n', stderr: '' } : { code: 0, stdout: '10.0.0.1 head01\n10.0.1.11 gpu01\n', stderr: '' }),
    });
    const evidence = await collectEvidence(context(), transport);
    expect(transport.commands).toEqual(['uname -n', 'cat /etc/hosts']);
    expect(verdict(evidence).ready).toBe(true);
  });
});
