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
 * The scripts run by a real /bin/sh against stand-ins for scontrol and sinfo that log their arguments (the real
 * Slurm runs them in test/integration/reimage-when-idle-slurm.test.ts): what reaches scontrol, word by word.
 */
describe('the scripts under /bin/sh', () => {
  let bin: string;
  const log = (): string[][] => readFileSync(path.join(bin, 'calls'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);

  beforeAll(() => {
    bin = mkdtempSync(path.join(tmpdir(), 'rackseed-fake-slurm-'));
    // Logs its argv as JSON; refuses node "bad"; shows node "mine" with rackseed's reboot and "theirs" with another.
    const fake = `#!/bin/sh
{ printf '["%s"' "$(basename "$0")"; for a in "$@"; do printf ',"%s"' "$a"; done; printf ']\\n'; } >> ${bin}/calls
for a in "$@"; do last=$a; done
case "$(basename "$0") $1 $last" in
  *" bad") echo "error: Invalid node name specified" >&2; exit 1 ;;
  "scontrol show mine") echo "NodeName=mine State=MIXED+DRAIN+REBOOT_REQUESTED Reason=rackseed reimage [root@2026-11-24T03:31:49]" ;;
  "scontrol show theirs") echo "NodeName=theirs State=IDLE+DRAIN+REBOOT_REQUESTED Reason=firmware update [root@2026-11-24T03:31:49]" ;;
  "scontrol show "*) echo "NodeName=$last State=IDLE" ;;
  "sinfo "*) echo "state mine draining" ;;
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

  it('asks scontrol once per node with rackseed\'s reason, then sinfo for all', () => {
    const out = sh(rebootRequestScript(['mine', 'bad']));
    expect(parseRebootAnswers(['mine', 'bad'], out, 'missing')).toEqual([
      { node: 'mine', ok: true, slurmState: 'draining' },
      { node: 'bad', ok: false, error: 'error: Invalid node name specified' },
    ]);
    expect(log()).toEqual([
      ['scontrol', 'reboot', 'ASAP', 'nextstate=RESUME', 'reason=rackseed reimage', 'mine'],
      ['scontrol', 'reboot', 'ASAP', 'nextstate=RESUME', 'reason=rackseed reimage', 'bad'],
      ['sinfo', '-h', '-N', '-n', 'mine,bad', '-o', 'state %N %T'],
    ]);
  });

  it('cancels only a reboot rackseed asked for: not one with another reason, not a node with none', () => {
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
