import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelScript, chunks, parseCancelAnswers, parseRebootAnswers, rebootRequestScript } from '../../server/services/slurm-reboot-script.js';

describe('parseRebootAnswers', () => {
  it.each([
    { name: 'every node taken, with its state', out: 'ok c01\nok c02\nstate c01 draining\nstate c02 reboot^\n', want: [{ node: 'c01', ok: true, slurmState: 'draining' }, { node: 'c02', ok: true, slurmState: 'reboot^' }] },
    { name: 'a refused node keeps scontrol\'s words', out: 'ok c01\nfail c02 scontrol_reboot_nodes error: Invalid node name specified \n', want: [{ node: 'c01', ok: true }, { node: 'c02', ok: false, error: 'scontrol_reboot_nodes error: Invalid node name specified' }] },
    { name: 'a node listed in two partitions: the first state', out: 'ok c01\nstate c01 draining\nstate c01 drained\nok c02\n', want: [{ node: 'c01', ok: true, slurmState: 'draining' }, { node: 'c02', ok: true }] },
    { name: 'a script cut short: the nodes it did not reach failed', out: 'ok c01\n', want: [{ node: 'c01', ok: true }, { node: 'c02', ok: false, error: 'no answer' }] },
    { name: 'noise from login scripts and unknown nodes is ignored', out: 'Welcome\nok c03\nok c01\nfail c02\n', want: [{ node: 'c01', ok: true }, { node: 'c02', ok: false, error: 'scontrol failed without a message' }] },
  ])('$name', ({ out, want }) => {
    expect(parseRebootAnswers(['c01', 'c02'], out, 'no answer')).toEqual(want);
  });
});

describe('parseCancelAnswers', () => {
  it('reads cancelled, none and fail per node, and fails a node without an answer', () => {
    expect(parseCancelAnswers(['a', 'b', 'c', 'd'], 'cancelled a\nnone b\nfail c slurm_update error: Invalid node state specified\n', 'cut short')).toEqual([
      { node: 'a', outcome: 'cancelled' },
      { node: 'b', outcome: 'none' },
      { node: 'c', outcome: 'failed', error: 'slurm_update error: Invalid node state specified' },
      { node: 'd', outcome: 'failed', error: 'cut short' },
    ]);
  });
});

describe('chunks', () => {
  it('splits in order into pieces of at most the size', () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunks([], 2)).toEqual([]);
  });
});

/**
 * The scripts run by a real /bin/sh against stand-ins for scontrol and sinfo that log their arguments and keep each
 * node's state in a file (the real Slurm runs them in test/integration/reimage-when-idle-slurm.test.ts): what reaches
 * scontrol, word by word, and how each kind of node is answered.
 */
describe('the scripts under /bin/sh', () => {
  let bin: string;
  const log = (): string[][] => readFileSync(path.join(bin, 'calls'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);

  beforeAll(() => {
    bin = mkdtempSync(path.join(tmpdir(), 'rackseed-fake-slurm-'));
    // Nodes: "bad" is unknown to Slurm; "admin" is drained by an administrator; "off" is powered down (Slurm takes
    // a reboot request for it without marking anything); "theirs" has a reboot another administrator asked for;
    // any other node is idle until rebooted.
    const fake = `#!/bin/sh
{ printf '["%s"' "$(basename "$0")"; for a in "$@"; do printf ',"%s"' "$a"; done; printf ']\\n'; } >> ${bin}/calls
for a in "$@"; do last=$a; done
case "$(basename "$0") $1 $last" in
  *" bad") echo "error: Invalid node name specified" >&2; exit 1 ;;
  "scontrol show admin") echo "NodeName=admin Arch=x86_64 State=IDLE+DRAIN ThreadsPerCore=1 Reason=bad DIMM, ticket 42 [root@2026-11-24T03:31:49] Comment=State=IDLE once fixed" ;;
  "scontrol show psu") echo "NodeName=psu State=DOWN ThreadsPerCore=1 Reason=bad PSU [admin@2026-11-24T03:31:49]" ;;
  "scontrol show lost") echo "NodeName=lost State=DOWN ThreadsPerCore=1 Reason=Not responding [slurm@2026-11-24T03:31:49]" ;;
  "scontrol show sick") [ -e ${bin}/rebooting-sick ] && echo "NodeName=sick State=IDLE+DRAIN+REBOOT_REQUESTED ThreadsPerCore=1 Reason=rackseed reimage [root@2026-11-24T03:31:49]" ||
    echo "NodeName=sick State=IDLE+DRAIN ThreadsPerCore=1 Reason=rackseed readiness: nvidia.gpu_count (7 of 8) [root@2026-11-24T03:31:49]" ;;
  "scontrol show off") echo "NodeName=off State=IDLE+POWERED_DOWN ThreadsPerCore=1" ;;
  "scontrol show theirs") echo "NodeName=theirs State=IDLE+DRAIN+REBOOT_REQUESTED ThreadsPerCore=1 Reason=firmware update [root@2026-11-24T03:31:49]" ;;
  "scontrol show "*)
    if [ -e ${bin}/rebooting-$last ]; then echo "NodeName=$last State=MIXED+DRAIN+REBOOT_REQUESTED ThreadsPerCore=1 Reason=rackseed reimage [root@2026-11-24T03:31:49]"
    else echo "NodeName=$last State=MIXED ThreadsPerCore=1"; fi ;;
  "scontrol reboot "*) case "$last" in off|lost) ;; *) : > ${bin}/rebooting-$last ;; esac ;;
  "scontrol cancel_reboot "*) rm -f ${bin}/rebooting-$last ;;
  "sinfo "*) echo "state mine draining@" ;;
esac
`;
    for (const name of ['scontrol', 'sinfo']) {
      writeFileSync(path.join(bin, name), fake);
      chmodSync(path.join(bin, name), 0o755);
    }
  });
  afterAll(() => rmSync(bin, { recursive: true, force: true }));

  const sh = (script: string) => {
    writeFileSync(path.join(bin, 'calls'), '');
    const r = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin` } });
    expect(r.status).toBe(0);
    return r.stdout;
  };

  it("asks scontrol per node with rackseed's reason and checks that Slurm marked the reboot; leaves a person's hold alone", () => {
    const nodes = ['mine', 'bad', 'admin', 'off', 'psu', 'lost', 'sick'];
    const out = sh(rebootRequestScript(nodes));
    const answers = parseRebootAnswers(nodes, out, 'missing');
    expect(answers[0]).toEqual({ node: 'mine', ok: true, slurmState: 'draining@' });
    expect(answers[1]).toEqual({ node: 'bad', ok: false, error: 'error: Invalid node name specified' });
    // The Reason runs to the end of the line; an administrator's free text there does not fool the State.
    expect(answers[2]).toEqual({ node: 'admin', ok: false, error: expect.stringMatching(/^held by an administrator \(Reason=bad DIMM, ticket 42 \[root@2026-11-24T03:31:49\] Comment=State=IDLE once fixed\): --when-idle would replace that reason/) });
    expect(answers[3]).toEqual({ node: 'off', ok: false, error: 'Slurm accepted the request but marked no reboot (State=IDLE+POWERED_DOWN): it will not reboot the node' });
    // An administrator's DOWN is a hold too; Slurm's own DOWN reason is not (the request is made, then not marked).
    expect(answers[4]).toEqual({ node: 'psu', ok: false, error: expect.stringMatching(/^held by an administrator \(Reason=bad PSU \[admin@/) });
    expect(answers[5]).toEqual({ node: 'lost', ok: false, error: 'Slurm accepted the request but marked no reboot (State=DOWN): it will not reboot the node' });
    // rackseed's own readiness drain is no hold: such a node is what a reimage is for.
    expect(answers[6]).toEqual({ node: 'sick', ok: true });
    const reboots = log().filter((c) => c[1] === 'reboot');
    expect(reboots.map((c) => c.at(-1))).toEqual(['mine', 'off', 'lost', 'sick']);
    expect(reboots[0]).toEqual(['scontrol', 'reboot', 'ASAP', 'nextstate=RESUME', 'reason=rackseed reimage', 'mine']);
    expect(log().at(-1)).toEqual(['sinfo', '-h', '-N', '-n', nodes.join(','), '-o', 'state %N %T']);
    // Asked again (a second reimage --when-idle): the drain is rackseed's own, so the request is made again.
    expect(parseRebootAnswers(['mine'], sh(rebootRequestScript(['mine'])), 'missing')[0]).toMatchObject({ ok: true });
  });

  it('cancels only a reboot rackseed asked for: not one with another reason, not a node with none', () => {
    writeFileSync(path.join(bin, 'rebooting-mine'), '');
    const out = sh(cancelScript(['mine', 'theirs', 'idle1', 'bad']));
    expect(parseCancelAnswers(['mine', 'theirs', 'idle1', 'bad'], out, 'missing')).toEqual([
      { node: 'mine', outcome: 'cancelled' },
      { node: 'theirs', outcome: 'none' },
      { node: 'idle1', outcome: 'none' },
      { node: 'bad', outcome: 'failed', error: 'error: Invalid node name specified' },
    ]);
    expect(log().filter((c) => c[1] === 'cancel_reboot')).toEqual([['scontrol', 'cancel_reboot', 'mine']]);
  });
});
