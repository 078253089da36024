import { describe, expect, it } from 'vitest';
import { gatherAnswers, prefixedLines, renderGathered, summaryLine } from '../../server/cli/commands/exec-format.js';
import { splitAtDashDash } from '../../server/cli/commands/exec.js';
import type { ExecOutcome } from '../../server/services/remote-exec.js';

const ran = (node: string, code: number, stdout: string, stderr = ''): ExecOutcome => ({ node, ran: true, code, stdout, stderr, durationMs: 5 });
const notRun = (node: string, error: string): ExecOutcome => ({ node, ran: false, stdout: '', stderr: '', error, durationMs: 5 });

describe('gatherAnswers', () => {
  it.each([
    {
      name: 'identical answers are one group under a hostlist',
      outcomes: [ran('gpu01', 0, 'ok\n'), ran('gpu02', 0, 'ok\n'), ran('gpu03', 0, 'ok\n')],
      want: [['gpu[01-03]', '---- gpu[01-03] (3) ----', 'ok\n']],
    },
    {
      name: 'the same stdout with another exit status or stderr is another answer',
      outcomes: [ran('a1', 0, 'x'), ran('a2', 1, 'x'), ran('a3', 0, 'x', 'warn'), ran('a4', 0, 'x')],
      want: [
        ['a[1,4]', '---- a[1,4] (2) ----', 'x\n'],
        ['a2', '---- a2 (1): exit 1 ----', 'x\n'],
        ['a3', '---- a3 (1) ----', 'x\n-- stderr --\nwarn\n'],
      ],
    },
    {
      name: 'nodes not run are grouped by their reason',
      outcomes: [notRun('n1', 'connect ECONNREFUSED'), notRun('n2', 'connect ECONNREFUSED'), notRun('n3', 'timed out')],
      want: [
        ['n[1-2]', '---- n[1-2] (2): NOT RUN: connect ECONNREFUSED ----', ''],
        ['n3', '---- n3 (1): NOT RUN: timed out ----', ''],
      ],
    },
    {
      name: 'a node whose command was killed at the timeout is not "not run"',
      outcomes: [{ ...notRun('t1', 'killed after 60 s'), timedOut: true as const }],
      want: [['t1', '---- t1 (1): TIMED OUT (killed after 60 s) ----', '']],
    },
    {
      name: 'output cut at the limit says so',
      outcomes: [{ ...ran('big', 0, 'aaa'), truncated: true as const }],
      want: [['big', '---- big (1) ----', 'aaa\n-- output cut at 64 KiB per stream --\n']],
    },
  ])('$name', ({ outcomes, want }) => {
    expect(gatherAnswers(outcomes).map((g) => [g.nodes.length > 1 ? g.header.slice(5, g.header.indexOf(' (')) : g.nodes[0], g.header, g.body])).toEqual(want);
  });

  it('renders the groups one after the other', () => {
    expect(renderGathered([ran('a', 0, 'one'), ran('b', 2, '')])).toBe('---- a (1) ----\none\n---- b (1): exit 2 ----\n');
  });
});

describe('prefixedLines', () => {
  it.each([
    { o: ran('n1', 0, 'a\nb\n'), stdout: 'n1: a\nn1: b\n', stderr: '' },
    { o: ran('n1', 0, 'no newline'), stdout: 'n1: no newline\n', stderr: '' },
    { o: ran('n1', 0, 'a\n\nb\n'), stdout: 'n1: a\nn1: \nn1: b\n', stderr: '' },
    { o: ran('n1', 3, '', 'boom\n'), stdout: '', stderr: 'n1: boom\nn1: [exit 3]\n' },
    { o: notRun('n1', 'host key mismatch'), stdout: '', stderr: 'n1: [NOT RUN: host key mismatch]\n' },
    // It ran and was killed: not "not run".
    { o: { ...notRun('n1', 'killed after 60 s'), timedOut: true as const }, stdout: '', stderr: 'n1: [TIMED OUT (killed after 60 s)]\n' },
    // What a node prints reaches the terminal as visible escapes, never as a retitle (OSC) or a colour/cursor move.
    { o: ran('n1', 1, 'a\u001b[2J\u001b[Hb\n', '\u001b]0;pwned\u0007\u009b31m\n'), stdout: 'n1: a\\u001b[2J\\u001b[Hb\n', stderr: 'n1: \\u001b]0;pwned\\u0007\\u009b31m\nn1: [exit 1]\n' },
    { o: { ...ran('n1', 0, 'x\n'), truncated: true as const }, stdout: 'n1: x\n', stderr: 'n1: [output cut at 64 KiB]\n' },
  ])('$o.node $o.code $o.stdout', ({ o, stdout, stderr }) => {
    expect(prefixedLines(o)).toEqual({ stdout, stderr });
  });
});

describe('summaryLine', () => {
  it('counts what happened', () => {
    expect(summaryLine({ type: 'summary', nodes: 3, succeeded: 1, exitNonZero: 1, unfinished: 1 })).toBe('3 nodes: 1 exit 0, 1 exit non-zero, 1 did not run or finish\n');
    expect(summaryLine({ type: 'summary', nodes: 1, succeeded: 1, exitNonZero: 0, unfinished: 0 })).toBe('1 node: 1 exit 0, 0 exit non-zero, 0 did not run or finish\n');
  });
});

describe('splitAtDashDash', () => {
  it.each([
    { raw: ['node', 'rackseed', 'exec', 'gpu[01-02]', 'group:a', '--', 'ls', '-l'], operands: ['gpu[01-02]', 'group:a', 'ls', '-l'], want: { targets: ['gpu[01-02]', 'group:a'], command: ['ls', '-l'] } },
    // Options before -- are not operands; a -- inside the command is the command's.
    { raw: ['node', 'rackseed', '--json', 'exec', '--timeout', '5', 'n1', '--', 'echo', '--', 'x'], operands: ['n1', 'echo', '--', 'x'], want: { targets: ['n1'], command: ['echo', '--', 'x'] } },
    { raw: ['node', 'rackseed', 'exec', 'n1', 'hostname'], operands: ['n1', 'hostname'], want: undefined },
    { raw: ['node', 'rackseed', 'exec', '--', 'hostname'], operands: ['hostname'], want: { targets: [], command: ['hostname'] } },
  ])('$raw', ({ raw, operands, want }) => {
    expect(splitAtDashDash(operands, raw)).toEqual(want);
  });
});
