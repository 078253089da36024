import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { RackseedError } from '../../server/model/errors.js';
import { loginShellLine, MAX_LINE_BYTES, maxScriptBytes, PID_MARK } from '../../server/state/transport/login-shell.js';

/**
 * The line sshd gives root's login shell (`<shell> -c <line>`), run here exactly so under each real shell a node may
 * have as root's: POSIX ones and tcsh, BSD csh and fish, which reject POSIX syntax (test/apt-packages.txt installs them).
 * Every one must run the script under sh, with the same output, and print its PID first.
 */
const SHELLS = ['/bin/sh', '/bin/dash', '/bin/bash', '/bin/busybox sh', '/bin/tcsh', '/bin/bsd-csh', '/usr/bin/fish'];

function viaLoginShell(shell: string, line: string, input = ''): { status: number | null; stdout: string; stderr: string; pid: number | undefined } {
  const [bin, ...args] = shell.split(' ');
  const r = spawnSync(bin!, [...args, '-c', line], { input, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, pid: r.pid };
}

/** The last column is the script's stdin: only one script reads it, and writing to one that exited without
 * reading can fail with EPIPE on a busy host. */
const SCRIPTS: Array<[what: string, script: string, stdout: string, stdin: string]> = [
  ['$0 is sh, and sh syntax', 'echo "$0"; if [ -n "$$" ]; then echo yes; fi', 'sh\nyes\n', ''],
  ['quotes, backslashes, ! and newlines', `printf '%s\\n' "it's" 'a!b' 'c\\d'\necho "!!"\nx='multi\nline'; echo "$x"`, "it's\na!b\nc\\d\n!!\nmulti\nline\n", ''],
  ['a here-document', 'cat <<EOF\n$((6 * 7)) `echo tick`\nEOF', '42 tick\n', ''],
  ['non-ASCII text', "echo 'héllo wörld ✓'", 'héllo wörld ✓\n', ''],
  ['stdin reaches the script', 'tr a-z A-Z', 'FROM STDIN\n', 'from stdin\n'],
];

describe('loginShellLine: one line every login shell runs the same', () => {
  for (const shell of SHELLS) {
    it.each(SCRIPTS)(`${shell}: %s`, (_what, script, stdout, stdin) => {
      const r = viaLoginShell(shell, loginShellLine(script, 30), stdin);
      expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 0, stdout });
      // The login shell exec'd /bin/sh: the PID it printed is the one sshd would have made the session leader.
      expect(r.stderr).toBe(`${PID_MARK}${r.pid}\n`);
    });

    it(`${shell}: the exit code comes back, and a script longer than the shell's own line limits runs`, () => {
      expect(viaLoginShell(shell, loginShellLine('exit 7')).status).toBe(7);
      const longest = maxScriptBytes();
      const script = `#${'x'.repeat(longest - 10)}\necho ok`;
      expect(Buffer.byteLength(script)).toBeLessThanOrEqual(longest);
      expect(viaLoginShell(shell, loginShellLine(script)).stdout).toBe('ok\n');
    });
  }

  it('is one line of printable ASCII with no quote, backslash or ! outside its own quoting', () => {
    for (const [, script] of SCRIPTS) {
      for (const limit of [undefined, 75]) {
        const line = loginShellLine(script, limit);
        expect(line).toMatch(/^exec \/bin\/sh -c '[^'\\!]*' sh( '[A-Za-z0-9+/=]{0,4096}')+$/);
      }
    }
  });

  it('bounds the command on the node with timeout(1) when there is a limit', () => {
    const line = loginShellLine('sleep 5', 75);
    const r = viaLoginShell('/bin/sh', line.replace('exec timeout', 'exec echo timeout'));
    expect(r.stdout).toBe('timeout -s KILL 75 sh -c sleep 5\n');
  });

  it('says what is missing on a node without base64', () => {
    const r = spawnSync('/bin/sh', ['-c', loginShellLine('echo never')], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
    expect(r.status).toBe(127);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/rackseed: cannot decode the command: the node needs base64 \(coreutils or busybox\)\n$/);
  });

  it('refuses a script too long for one argument on the node (E2BIG there) with STATE_COMMAND_TOO_LONG', () => {
    const longest = maxScriptBytes(75);
    expect(loginShellLine('x'.repeat(longest), 75).length).toBeLessThanOrEqual(MAX_LINE_BYTES);
    let error: unknown;
    try {
      loginShellLine('x'.repeat(longest + 1), 75);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RackseedError);
    expect(error).toMatchObject({ code: 'STATE_COMMAND_TOO_LONG', details: { bytes: longest + 1, maxBytes: longest } });
  });
});
