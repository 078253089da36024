import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { unifiedDiff } from '../../server/state/modules/diff.js';

const dir = mkdtempSync(join(tmpdir(), 'rackseed-diff-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** GNU diff -u on the same texts, with the same labels, as the reference. */
function gnuDiff(a: string, b: string): string {
  writeFileSync(join(dir, 'a'), a);
  writeFileSync(join(dir, 'b'), b);
  try {
    execFileSync('diff', ['-u', '--label', 'old', '--label', 'new', join(dir, 'a'), join(dir, 'b')]);
    return '';
  } catch (error) {
    return (error as { stdout: Buffer }).stdout.toString();
  }
}

describe('unifiedDiff', () => {
  it('gives the golden diff for a one-line change with three lines of context', () => {
    const old = 'a\nb\nc\nd\ne\nf\ng\nh\n';
    const next = 'a\nb\nc\nd\nE\nf\ng\nh\n';
    expect(unifiedDiff(old, next, { fromFile: '/etc/x', toFile: '/etc/x' })).toBe(
      ['--- /etc/x', '+++ /etc/x', '@@ -2,7 +2,7 @@', ' b', ' c', ' d', '-e', '+E', ' f', ' g', ' h', ''].join('\n'),
    );
  });

  it('returns an empty string for equal texts', () => {
    expect(unifiedDiff('same\n', 'same\n')).toBe('');
  });

  it('marks a missing final newline on either side', () => {
    expect(unifiedDiff('x\n', 'x')).toBe(['--- a', '+++ b', '@@ -1 +1 @@', '-x', '+x', '\\ No newline at end of file', ''].join('\n'));
  });

  it('diffs from and to an empty text with zero-length ranges', () => {
    expect(unifiedDiff('', 'one\ntwo\n')).toBe(['--- a', '+++ b', '@@ -0,0 +1,2 @@', '+one', '+two', ''].join('\n'));
    expect(unifiedDiff('one\n', '')).toBe(['--- a', '+++ b', '@@ -1 +0,0 @@', '-one', ''].join('\n'));
  });

  it('splits distant changes into separate hunks and joins near ones', () => {
    const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
    const far = [...lines];
    far[1] = 'changed 2';
    far[25] = 'changed 26';
    const near = [...lines];
    near[1] = 'changed 2';
    near[7] = 'changed 8';
    const text = (l: string[]) => `${l.join('\n')}\n`;
    expect(unifiedDiff(text(lines), text(far)).match(/^@@/gm)).toHaveLength(2);
    expect(unifiedDiff(text(lines), text(near)).match(/^@@/gm)).toHaveLength(1);
  });

  it('matches GNU diff -u exactly on realistic config edits', () => {
    const sshd = 'Port 22\nPermitRootLogin yes\nPasswordAuthentication yes\nUsePAM yes\nX11Forwarding yes\nPrintMotd no\nAcceptEnv LANG LC_*\nSubsystem sftp /usr/lib/openssh/sftp-server\n';
    const hardened = 'Port 22\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM yes\nX11Forwarding no\nPrintMotd no\nAcceptEnv LANG LC_*\nSubsystem sftp /usr/lib/openssh/sftp-server\nClientAliveInterval 60\n';
    const cases: Array<[string, string]> = [
      [sshd, hardened],
      [hardened, sshd],
      ['a\nb\nc\n', 'c\nb\na\n'],
      ['x\ny\nz', 'x\ny\nz\n'],
      ['only\n', 'entirely\ndifferent\n'],
    ];
    for (const [a, b] of cases) expect(unifiedDiff(a, b, { fromFile: 'old', toFile: 'new' })).toBe(gnuDiff(a, b));
  });

  it('produces patches that turn the old text into the new one (random texts)', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const text = () => {
      const n = Math.floor(random() * 25);
      const out = Array.from({ length: n }, () => `l${Math.floor(random() * 5)}`).join('\n');
      return out !== '' && random() < 0.8 ? `${out}\n` : out;
    };
    for (let i = 0; i < 60; i++) {
      const a = text();
      const b = text();
      const patch = unifiedDiff(a, b);
      writeFileSync(join(dir, 'target'), a);
      writeFileSync(join(dir, 'patch'), patch);
      if (patch !== '') execFileSync('patch', ['-s', join(dir, 'target'), join(dir, 'patch')]);
      expect(execFileSync('cat', [join(dir, 'target')]).toString()).toBe(b);
      // Same number of changed lines as GNU diff: the edit script is minimal.
      const edits = (d: string) => d.split('\n').filter((l) => /^[+-](?![+-]{2} )/.test(l)).length;
      expect(edits(patch)).toBe(edits(gnuDiff(a, b)));
    }
  });

  it('summarises instead of diffing beyond maxEdits', () => {
    const a = `${Array.from({ length: 50 }, (_, i) => `a${i}`).join('\n')}\n`;
    const b = `${Array.from({ length: 50 }, (_, i) => `b${i}`).join('\n')}\n`;
    expect(unifiedDiff(a, b, { maxEdits: 10 })).toBe('(diff too large: 50 lines -> 50 lines)\n');
  });
});
