import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateSlurmNode } from '../../server/readiness/roles/slurm.js';
import { slurmHealthAction, SLURM_DRAIN_REASON_MAX } from '../../server/readiness/slurm-drain.js';
import type { CheckContext, Evidence } from '../../server/readiness/types.js';
import { drainScript, parseDrainAnswers, resumeScript } from '../../server/services/slurm-drain-script.js';

const ev = (check: string, pass: boolean, extra: Partial<Evidence> = {}): Evidence => ({ check, role: check.split('.')[0]!, expected: 'x', seen: 'y', pass, ...extra });

describe('slurmHealthAction', () => {
  it.each([
    { name: 'all checks pass, Slurm state usable: nothing', evidence: [ev('base.hosts', true), ev('slurm.node_state', true, { seen: 'IDLE' })], want: undefined },
    {
      name: 'a check fails: drain with the failing checks and their reasons',
      evidence: [ev('base.hosts', false, { reason: '/etc/hosts lacks 10.0.0.2 c2' }), ev('nvidia.gpu_count', false), ev('slurm.node_state', true, { seen: 'IDLE' })],
      want: { node: 'n1', kind: 'drain', reason: 'rackseed readiness: base.hosts (/etc/hosts lacks 10.0.0.2 c2); nvidia.gpu_count' },
    },
    { name: "only Slurm's own check fails (down, an admin's drain): nothing, Slurm knows", evidence: [ev('base.hosts', true), ev('slurm.node_state', false, { seen: 'DOWN*' })], want: undefined },
    { name: 'every check passes and the drain is rackseed\'s: resume', evidence: [ev('base.hosts', true), ev('slurm.node_state', true, { seen: 'IDLE+DRAIN' })], want: { node: 'n1', kind: 'resume' } },
    { name: 'a check did not run (timeout): nothing concluded', evidence: [ev('base.hosts', false, { notRun: true }), ev('slurm.node_state', true, { seen: 'IDLE+DRAIN' })], want: undefined },
  ])('$name', ({ evidence, want }) => {
    expect(slurmHealthAction('n1', evidence, undefined)).toEqual(want);
  });

  it('an unreachable node (the run has an error) is never drained: Slurm sees slurmd itself, and a server cut off must not drain the fleet', () => {
    expect(slurmHealthAction('n1', [ev('base.hosts', false)], { code: 'STATE_TRANSPORT', message: 'connect ECONNREFUSED' })).toBeUndefined();
    expect(slurmHealthAction('n1', [], undefined)).toBeUndefined();
  });

  it('keeps the reason one short line', () => {
    const a = slurmHealthAction('n1', [ev('base.hosts', false, { reason: `line one\nline two ${'x'.repeat(400)}` })], undefined);
    expect(a?.kind).toBe('drain');
    const reason = a?.kind === 'drain' ? a.reason : '';
    expect(reason.length).toBe(SLURM_DRAIN_REASON_MAX);
    expect(reason).toMatch(/^rackseed readiness: base\.hosts \(line one line two x+…$/);
  });
});

describe("slurm.node_state and rackseed's own drain", () => {
  const ctx = { node: 'c1', slurmDrainUnready: true } as CheckContext;
  const show = (state: string, reason?: string) => ({ code: 0, stdout: `NodeName=c1 Arch=x86_64\n   State=${state} ThreadsPerCore=1\n${reason ? `   Reason=${reason}\n` : ''}`, stderr: '' });
  it.each([
    { state: 'IDLE+DRAIN', reason: 'rackseed readiness: base.hosts [slurm@2026-11-24T04:00:00]', pass: true },
    { state: 'MIXED+DRAIN', reason: 'rackseed readiness: nvidia.gpu_count [root@2026-11-24T04:00:00]', pass: true },
    // An administrator's drain, a drain of rackseed's on a node Slurm cannot use anyway, a reimage's drain: failures.
    { state: 'IDLE+DRAIN', reason: 'bad DIMM [root@2026-11-24T04:00:00]', pass: false },
    { state: 'DOWN+DRAIN', reason: 'rackseed readiness: base.hosts [slurm@2026-11-24T04:00:00]', pass: false },
    { state: 'IDLE*+DRAIN', reason: 'rackseed readiness: base.hosts [slurm@2026-11-24T04:00:00]', pass: false },
    { state: 'MIXED+DRAIN+REBOOT_REQUESTED', reason: 'rackseed reimage [root@2026-11-24T04:00:00]', pass: false },
  ])('$state $reason: pass $pass', ({ state, reason, pass }) => {
    const [e] = evaluateSlurmNode(show(state, reason), ctx);
    expect(e?.pass).toBe(pass);
    if (pass) expect(e?.reason).toContain('lifted once the other checks pass');
  });

  it('with slurm.drain_unready turned off since, its drain fails the check and says how to lift it (nothing else will)', () => {
    const [e] = evaluateSlurmNode(show('IDLE+DRAIN', 'rackseed readiness: base.hosts [root@2026-11-24T04:00:00]'), { node: 'c1' } as CheckContext);
    expect(e?.pass).toBe(false);
    expect(e?.reason).toContain('slurm.drain_unready is off now: lift it with scontrol update nodename=c1 state=resume');
  });
});

/** The scripts under a real /bin/sh against a stand-in scontrol that keeps each node's State and Reason in files. */
describe('the drain and resume scripts under /bin/sh', () => {
  let bin: string;
  const set = (node: string, state: string, reason = '') => {
    writeFileSync(path.join(bin, `state-${node}`), state);
    writeFileSync(path.join(bin, `reason-${node}`), reason);
  };
  const get = (node: string) => [readFileSync(path.join(bin, `state-${node}`), 'utf8'), readFileSync(path.join(bin, `reason-${node}`), 'utf8')];

  beforeAll(() => {
    bin = mkdtempSync(path.join(tmpdir(), 'rackseed-fake-scontrol-'));
    writeFileSync(
      path.join(bin, 'scontrol'),
      `#!/bin/sh
d=${bin}
if [ "$1 $2" = "show node" ]; then n=$4; [ -e $d/state-$n ] || { echo "Node $n not found"; exit 1; }
  r=$(cat $d/reason-$n); echo "NodeName=$n Arch=x86_64 State=$(cat $d/state-$n) ThreadsPerCore=1\${r:+ Reason=$r}"; exit 0; fi
if [ "$1" = update ]; then n=\${2#nodename=}; s=\${3#state=}; r=\${4#reason=}
  case "$s" in drain) printf '%s' "$(cat $d/state-$n | sed 's/+DRAIN//')+DRAIN" > $d/state-$n; printf '%s [slurm@now]' "$r" > $d/reason-$n ;;
    resume) sed -i 's/+DRAIN//' $d/state-$n; : > $d/reason-$n ;; esac; exit 0; fi
exit 2
`,
    );
    chmodSync(path.join(bin, 'scontrol'), 0o755);
  });
  afterAll(() => rmSync(bin, { recursive: true, force: true }));

  const sh = (script: string) => {
    const r = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin` } });
    expect(r.status).toBe(0);
    return r.stdout;
  };

  it("drains with rackseed's reason, updates its own, and never replaces an administrator's", () => {
    set('c1', 'IDLE');
    set('c2', 'IDLE+DRAIN', 'bad DIMM [root@then]');
    set('c3', 'MIXED+DRAIN', 'rackseed readiness: base.hosts [slurm@then]');
    set('c4', 'DOWN', 'bad PSU [admin@then]');
    set('c5', 'DOWN', 'Not responding [slurm@then]');
    set('c6', 'MIXED+DRAIN+REBOOT_REQUESTED', 'rackseed reimage [root@then]');
    set('c7', 'IDLE+DRAIN', 'Kill task failed [slurm@then]');
    const drains = [
      { node: 'c1', reason: "rackseed readiness: base.hosts (it's wrong)" },
      { node: 'c2', reason: 'rackseed readiness: nvidia.gpu_count' },
      { node: 'c3', reason: 'rackseed readiness: nvidia.gpu_count' },
      { node: 'gone', reason: 'rackseed readiness: x' },
      { node: 'c4', reason: 'rackseed readiness: x' },
      { node: 'c5', reason: 'rackseed readiness: x' },
      { node: 'c6', reason: 'rackseed readiness: x' },
      { node: 'c7', reason: 'rackseed readiness: x' },
    ];
    const answers = parseDrainAnswers(drains.map((d) => d.node), sh(drainScript(drains)), 'missing');
    expect(answers).toEqual([
      { node: 'c1', outcome: 'drained' },
      { node: 'c2', outcome: 'left', detail: 'held by someone else: bad DIMM [root@then]' },
      { node: 'c3', outcome: 'drained' },
      { node: 'gone', outcome: 'failed', error: 'Node gone not found' },
      // An administrator's DOWN is theirs; Slurm's own reason is no one's; a reimage's drain belongs to its reboot.
      { node: 'c4', outcome: 'left', detail: 'held by someone else: bad PSU [admin@then]' },
      { node: 'c5', outcome: 'drained' },
      { node: 'c6', outcome: 'left', detail: 'held by someone else: rackseed reimage [root@then]' },
      // Slurm's own drain (unkillable processes, a failed prolog) keeps the node out: rackseed must not lift it later.
      { node: 'c7', outcome: 'left', detail: 'held by Slurm: Kill task failed [slurm@then]' },
    ]);
    expect(get('c4')).toEqual(['DOWN', 'bad PSU [admin@then]']);
    expect(get('c1')).toEqual(['IDLE+DRAIN', "rackseed readiness: base.hosts (it's wrong) [slurm@now]"]);
    expect(get('c2')).toEqual(['IDLE+DRAIN', 'bad DIMM [root@then]']);
    expect(get('c3')).toEqual(['MIXED+DRAIN', 'rackseed readiness: nvidia.gpu_count [slurm@now]']);
  });

  it("resumes only a drain of rackseed's", () => {
    set('c1', 'IDLE+DRAIN', 'rackseed readiness: base.hosts [slurm@then]');
    set('c2', 'IDLE+DRAIN', 'bad DIMM [root@then]');
    set('c3', 'IDLE');
    const answers = parseDrainAnswers(['c1', 'c2', 'c3'], sh(resumeScript(['c1', 'c2', 'c3'])), 'missing');
    expect(answers).toEqual([
      { node: 'c1', outcome: 'resumed' },
      { node: 'c2', outcome: 'left', detail: 'held by someone else: bad DIMM [root@then]' },
      { node: 'c3', outcome: 'left', detail: 'not drained' },
    ]);
    expect(get('c1')).toEqual(['IDLE', '']);
    expect(get('c2')).toEqual(['IDLE+DRAIN', 'bad DIMM [root@then]']);
  });
});
