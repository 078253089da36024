/**
 * Nodes whose root login shell is not POSIX: sshd hands every command to that shell, and tcsh, BSD csh and fish
 * reject POSIX syntax, so every state run, fact collection and readiness check on such a node used to fail. Real
 * targets (test/support/ssh-target.ts) whose root has each of those shells, given in the target's own /etc/passwd
 * (never the host's): the SSH transport's commands, files and timeouts, then a whole state apply.
 */
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeRunReport } from '../../server/services/state-service.js';
import { collectFacts } from '../../server/state/collect-facts.js';
import { maxScriptBytes } from '../../server/state/transport/login-shell.js';
import { openSshTransport, type SshTransport } from '../../server/state/transport/ssh.js';
import { runProblems, startDemoStates, type DemoStates } from '../support/demo-states.js';
import { rejection } from '../support/rejection.js';
import { startSshTargets, type LoginShell, type SshTarget, type SshTargets } from '../support/ssh-target.js';
import { waitFor } from '../support/wait.js';

const SHELLS: LoginShell[] = ['/bin/tcsh', '/bin/bsd-csh', '/usr/bin/fish'];
/** Where each shell reads root's startup file for a command over SSH (`shell -c`). */
const STARTUP_FILE: Record<LoginShell, string> = { '/bin/tcsh': '/root/.tcshrc', '/bin/bsd-csh': '/root/.cshrc', '/usr/bin/fish': '/root/.config/fish/config.fish' };

let lab: SshTargets;
const transports = new Map<string, SshTransport>();
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

const open = (t: SshTarget): Promise<SshTransport> =>
  openSshTransport({ target: t.name, host: t.host, port: t.port, privateKey: t.privateKey, knownHostKey: t.hostKeyLine, connectTimeoutMs: 10_000 });

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('SSH targets need root (network namespaces, overlay mounts, chroot)');
  lab = await startSshTargets(SHELLS.length, { names: ['tcsh01', 'csh01', 'fish01'], loginShells: SHELLS });
  for (const [i, t] of lab.targets.entries()) {
    // Startup noise on stderr, as an HPC site's module setup prints it: it also proves the shell really ran.
    const file = STARTUP_FILE[SHELLS[i]!];
    t.sh(`mkdir -p ${path.dirname(file)} && echo "/bin/sh -c 'echo startup-noise >&2'" > ${file}`);
    transports.set(t.name, await open(t));
  }
});

afterAll(async () => {
  for (const t of transports.values()) await t.close();
  await lab?.stop();
});

describe.each(SHELLS.map((shell, i) => ({ shell, i })))('root with $shell as login shell', ({ shell, i }) => {
  const target = (): SshTarget => lab.targets[i]!;
  const transport = (): SshTransport => transports.get(target().name)!;

  it('is what sshd runs commands with', () => {
    expect(target().sh('getent passwd root').stdout).toBe(`root:x:0:0:root:/root:${shell}\n`);
    expect(target().sh(`${shell} -c 'echo works'`)).toMatchObject({ status: 0, stdout: 'works\n' });
  });

  it('runs commands under sh with their exit code, stdout and stderr, after the startup noise', async () => {
    expect(await transport().exec('echo "$0 $(id -u) $(hostname)"; echo oops >&2; exit 3')).toEqual({ code: 3, stdout: `sh 0 ${target().name}\n`, stderr: 'startup-noise\noops\n' });
    const script = `printf '%s\\n' "it's" 'a!b' 'c\\d'\nif [ -n "$$" ]; then echo "!!"; fi`;
    expect((await transport().exec(script)).stdout).toBe("it's\na!b\nc\\d\n!!\n");
    expect((await transport().exec('tr a-z A-Z', { stdin: 'hello\n' })).stdout).toBe('HELLO\n');
    expect((await transport().exec('cat; echo done')).stdout).toBe('done\n');
  });

  it('sends the longest script it accepts, and refuses a longer one before sending', async () => {
    const longest = maxScriptBytes();
    expect((await transport().exec(`#${'x'.repeat(longest - 20)}\necho long`)).stdout).toBe('long\n');
    const err = await rejection(transport().exec(`#${'x'.repeat(longest)}\necho never`));
    expect(err).toMatchObject({ code: 'STATE_COMMAND_TOO_LONG', details: { target: target().name, maxBytes: longest } });
    expect((await transport().exec('echo still here')).stdout).toBe('still here\n');
  });

  it('reads and writes files, bytes exact, with mode and owner', async () => {
    const data = randomBytes(1 << 20);
    await transport().writeFile('/srv/blob', data, { mode: '0640', owner: 'nobody', group: 'daemon' });
    expect(md5((await transport().readFile('/srv/blob'))!)).toBe(md5(data));
    expect(target().sh('stat -c "%a %U %G" /srv/blob').stdout).toBe('640 nobody daemon\n');
    expect(await transport().readFile('/etc/no-such-file')).toBeUndefined();
    expect((await rejection(transport().readFile('/etc'))).code).toBe('STATE_FILE_IO');
  });

  it('collects facts', async () => {
    expect(await collectFacts(transport())).toMatchObject({ osFamily: 'debian', osRelease: '12', hostname: target().name });
  });

  it('bounds a command on the node, and a timed-out command is killed with its whole process group', async () => {
    const bounded = transport().exec(`sleep 62${i}`, { timeoutMs: 60_000 });
    await waitFor('the command to start', () => target().sh(`pgrep -fx "sleep 62${i}"`).status === 0);
    expect(target().sh('ps -eo args').stdout).toMatch(new RegExp(`^timeout -s KILL ${60 + 15} sh -c sleep 62${i}$`, 'm'));
    target().sh(`pkill -x -f "sleep 62${i}"`);
    expect((await bounded).code).toBe(143);

    const err = await rejection(transport().exec(`sleep 63${i} & sleep 64${i}; wait`, { timeoutMs: 1_000 }));
    expect(err.code).toBe('STATE_TIMEOUT');
    await waitFor('the timed-out commands to be killed', () => target().sh(`pgrep -f "sleep 6[34]${i}" || echo none`).stdout === 'none\n');
    expect((await transport().exec('echo after')).stdout).toBe('after\n');
  });
});

describe('a state apply on nodes with non-POSIX login shells', () => {
  let demo: DemoStates;

  beforeAll(async () => {
    demo = await startDemoStates(lab.targets, { prefix: 'rackseed-login-shells-', macByte: '40', concurrency: 3, transportFor: open });
  });

  afterAll(async () => {
    await demo?.close();
  });

  it('every module converges, and a second apply changes nothing', async () => {
    const first = await demo.states.run([...demo.inventory.inventory.nodes.values()], 'apply');
    expect(runProblems(first)).toEqual([]);
    const results = (reports: NodeRunReport[]) => Object.fromEntries(reports.map((r) => [r.node, r.result]));
    expect(results(first)).toEqual(Object.fromEntries(lab.targets.map((t) => [t.name, 'changed'])));
    for (const t of lab.targets) {
      expect(t.sh('dpkg -s tree | grep ^Status; getent passwd rsdemo | cut -d: -f1; cat /etc/motd').stdout).toBe(
        `Status: install ok installed\nrsdemo\nWelcome to ${t.name} (debian 12, group demo)\nCluster lab: ${lab.targets.map((x) => x.name).join(', ')}\n`,
      );
    }
    const second = await demo.states.run([...demo.inventory.inventory.nodes.values()], 'apply');
    expect(runProblems(second)).toEqual([]);
    expect(results(second)).toEqual(Object.fromEntries(lab.targets.map((t) => [t.name, 'success'])));
    expect(second.flatMap((r) => r.states.filter((s) => Object.keys(s.changes).length > 0).map((s) => `${r.node} ${s.id}`))).toEqual([]);
  }, 300_000);
});
