/**
 * The SSH transport against real sshd targets (Debian 12 trees, each in its own network namespace, see
 * test/support/ssh-target.ts): commands, atomic file writes, host key pinning, timeouts and a connection that dies;
 * and over SSH into a container that runs a real systemd (test/support/systemd-target.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectFacts } from '../../server/state/collect-facts.js';
import { openSshTransport, OUTPUT_LIMIT_BYTES, pinnedKeyFromKnownHosts, type SshTransport, type SshTransportOptions } from '../../server/state/transport/ssh.js';
import { fingerprint, parsePublicKey } from '../../server/state/transport/known-hosts.js';
import { rejection } from '../support/rejection.js';
import { startSshTargets, type SshTarget, type SshTargets } from '../support/ssh-target.js';
import { startSystemdTarget, type SystemdTarget } from '../support/systemd-target.js';
import { waitFor } from '../support/wait.js';

let lab: SshTargets;
let main: SshTarget;
let other: SshTarget;
let victim: SshTarget;
let transport: SshTransport;

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

function optionsFor(t: SshTarget, overrides: Partial<SshTransportOptions> = {}): SshTransportOptions {
  return { target: t.name, host: t.host, port: t.port, privateKey: t.privateKey, knownHostKey: t.hostKeyLine, connectTimeoutMs: 10_000, ...overrides };
}

const accepted = (t: SshTarget): number => t.log().split('\n').filter((l) => l.startsWith('Accepted publickey')).length;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('SSH targets need root (network namespaces, overlay mounts, chroot)');
  lab = await startSshTargets(3);
  [main, other, victim] = lab.targets as [SshTarget, SshTarget, SshTarget];
  transport = await openSshTransport(optionsFor(main));
});

afterAll(async () => {
  await transport?.close();
  await lab?.stop();
});

describe('SSH transport: commands', () => {
  it('runs commands under sh as root and returns exit code, stdout and stderr', async () => {
    expect(await transport.exec('echo "$0 $(id -u) $(hostname)"; echo oops >&2; exit 3')).toEqual({ code: 3, stdout: `sh 0 ${main.name}\n`, stderr: 'oops\n' });
    expect(await transport.exec('true')).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('passes stdin, and gives a command without stdin an immediate end of input', async () => {
    expect((await transport.exec('tr a-z A-Z', { stdin: 'hello\n' })).stdout).toBe('HELLO\n');
    expect((await transport.exec('cat; echo done')).stdout).toBe('done\n');
  });

  it('reuses its one connection for many commands at once, beyond the server session limit', async () => {
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => transport.exec(`echo ${i}`)));
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 30 }, (_, i) => `${i}\n`));
    expect(accepted(main)).toBe(1);
  });

  it('collects facts in one command', async () => {
    const facts = await collectFacts(transport);
    expect(facts).toMatchObject({ osFamily: 'debian', osId: 'debian', osRelease: '12', hostname: main.name, arch: 'x86_64' });
    expect(facts.cpus).toBeGreaterThan(0);
    expect(facts.memoryMiB).toBeGreaterThan(0);
    expect(facts.nics).toEqual([expect.objectContaining({ addresses: expect.arrayContaining([main.ip]), state: 'up' })]);
  });
});

describe('SSH transport: files', () => {
  it('reads what is there, bytes exact, and undefined for what is not', async () => {
    expect((await transport.readFile('/etc/hostname'))?.toString()).toBe(`${main.name}\n`);
    expect(await transport.readFile('/etc/no-such-file')).toBeUndefined();
    expect(await transport.readFile('/etc/no-such-dir/file')).toBeUndefined();
    const err = await rejection(transport.readFile('/etc'));
    expect(err.code).toBe('STATE_FILE_IO');
    expect(err.message).toMatch(/Is a directory/);
  });

  it('writes binary content exactly and applies mode, owner and group', async () => {
    const data = randomBytes(1 << 20);
    await transport.writeFile('/srv/blob', data, { mode: '0640', owner: 'nobody', group: 'daemon' });
    expect(md5((await transport.readFile('/srv/blob'))!)).toBe(md5(data));
    expect(main.sh('stat -c "%a %U %G" /srv/blob').stdout).toBe('640 nobody daemon\n');
    // No temporary file is left next to it.
    expect(main.sh('ls -a /srv').stdout.split('\n').filter((f) => f.includes('rackseed-tmp'))).toEqual([]);
  });

  it('keeps the mode and owner of a file it replaces, and gives a new file 0644 root', async () => {
    main.sh('printf old > /etc/managed.conf && chown daemon:daemon /etc/managed.conf && chmod 0600 /etc/managed.conf');
    await transport.writeFile('/etc/managed.conf', 'new\n');
    expect(main.sh('stat -c "%a %U %G" /etc/managed.conf; cat /etc/managed.conf').stdout).toBe('600 daemon daemon\nnew\n');
    await transport.writeFile('/etc/fresh.conf', 'x');
    expect(main.sh('stat -c "%a %U %G" /etc/fresh.conf').stdout).toBe('644 root root\n');
  });

  it('writes through a symlink, leaving the link in place', async () => {
    main.sh('printf a > /etc/real.conf && ln -sf real.conf /etc/link.conf');
    await transport.writeFile('/etc/link.conf', 'through the link');
    expect(main.sh('readlink /etc/link.conf; cat /etc/real.conf').stdout).toBe('real.conf\nthrough the link');
  });

  it('fails a write with STATE_FILE_IO (the connection stays usable) and leaves no temporary file', async () => {
    const missingDir = await rejection(transport.writeFile('/nonexistent/dir/file', 'x'));
    expect(missingDir.code).toBe('STATE_FILE_IO');
    const badOwner = await rejection(transport.writeFile('/srv/owned', 'x', { owner: 'no-such-user' }));
    expect(badOwner.code).toBe('STATE_FILE_IO');
    expect(badOwner.message).toMatch(/no-such-user/);
    expect(main.sh('ls -a /srv').stdout).not.toMatch(/owned/);
    expect((await rejection(transport.writeFile('/srv/x', 'x', { mode: 'rwx' }))).code).toBe('STATE_FILE_IO');
    expect((await transport.exec('echo still here')).stdout).toBe('still here\n');
  });

  it('is atomic: a reader looping over the file only ever sees one whole version or the other', async () => {
    const a = Buffer.alloc(1 << 20, 'a');
    const b = Buffer.alloc(1 << 20, 'b');
    await transport.writeFile('/srv/atomic', a);
    const reader = transport.exec('touch /srv/reader-started; n=0; while [ ! -e /srv/stop ]; do md5sum < /srv/atomic; done | sort | uniq -c', { timeoutMs: 60_000 });
    await waitFor('the reader loop', async () => (await transport.readFile('/srv/reader-started')) !== undefined);
    for (let i = 0; i < 20; i++) await transport.writeFile('/srv/atomic', i % 2 ? a : b);
    await transport.writeFile('/srv/stop', '');
    const seen = (await reader).stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[1]);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.filter((h) => h !== md5(a) && h !== md5(b))).toEqual([]);
  });
});

describe('SSH transport: host key pinning', () => {
  it('refuses a host whose key is not the pinned one, before authenticating, naming both fingerprints', async () => {
    const before = accepted(other);
    const err = await rejection(openSshTransport(optionsFor(other, { knownHostKey: main.hostKeyLine })));
    expect(err.code).toBe('SSH_HOST_KEY_MISMATCH');
    const expected = fingerprint(parsePublicKey(main.hostKeyLine).blob);
    const presented = fingerprint(parsePublicKey(other.hostKeyLine).blob);
    expect(err.details).toMatchObject({ target: other.name, expected, presented });
    expect(err.message).toContain(expected);
    expect(err.message).toContain(presented);
    // The server never saw a login: no command could have run.
    expect(accepted(other)).toBe(before);
  });

  it('refuses to connect without a pin (no trust on first use), and with a pin that is not a key', async () => {
    const before = accepted(other);
    expect((await rejection(openSshTransport(optionsFor(other, { knownHostKey: undefined })))).code).toBe('SSH_HOST_KEY_UNKNOWN');
    expect((await rejection(openSshTransport(optionsFor(other, { knownHostKey: '' })))).code).toBe('SSH_HOST_KEY_UNKNOWN');
    expect((await rejection(openSshTransport(optionsFor(other, { knownHostKey: 'ssh-ed25519 AAAA' })))).code).toBe('SSH_HOST_KEY_UNKNOWN');
    expect(accepted(other)).toBe(before);
  });

  it('connects with the pin read from a known_hosts file as node-identity writes it, and a key file path', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-known-hosts-'));
    try {
      const file = path.join(dir, 'known_hosts');
      writeFileSync(file, `${main.name},${main.ip} ${main.hostKeyLine}\n${other.name},${other.ip} ${other.hostKeyLine}\n`);
      expect(pinnedKeyFromKnownHosts(file, ['nodeX'])).toBeUndefined();
      expect(pinnedKeyFromKnownHosts(path.join(dir, 'missing'), [other.name])).toBeUndefined();
      const pin = pinnedKeyFromKnownHosts(file, [other.name]);
      expect(pin).toBe(other.hostKeyLine);
      const t = await openSshTransport(optionsFor(other, { knownHostKey: pin, privateKey: other.privateKeyFile }));
      try {
        expect((await t.exec('hostname')).stdout).toBe(`${other.name}\n`);
      } finally {
        await t.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports an unreachable node as STATE_TRANSPORT', async () => {
    const err = await rejection(openSshTransport(optionsFor(other, { port: 1 })));
    expect(err.code).toBe('STATE_TRANSPORT');
    expect(err.message).toMatch(/cannot connect/);
  });
});

describe('SSH transport: faults', () => {
  it('times out a command that hangs, kills it, and the next command on the same connection works', async () => {
    const err = await rejection(transport.exec('sleep 600; echo never', { timeoutMs: 1_000 }));
    expect(err.code).toBe('STATE_TIMEOUT');
    expect(err.details).toMatchObject({ target: main.name, command: 'sleep 600; echo never', timeoutMs: 1_000 });
    expect((await transport.exec('echo after')).stdout).toBe('after\n');
    await waitFor('the timed-out command to be killed', () => main.sh('pgrep -fx "sleep 600" || echo none').stdout === 'none\n');
  });

  it('a command killed by a signal reports 128 + its number (it read 128 for every signal)', async () => {
    expect((await transport.exec('kill -TERM $$')).code).toBe(143);
    expect((await transport.exec('kill -KILL $$')).code).toBe(137);
  });

  it('keeps at most OUTPUT_LIMIT_BYTES of what a command prints (a runaway command grew the server\'s memory without end) and says what it dropped', async () => {
    const more = 5 * 1024 * 1024;
    const r = await transport.exec(`head -c ${OUTPUT_LIMIT_BYTES + more} /dev/zero | tr '\\0' x; echo done >&2`);
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(OUTPUT_LIMIT_BYTES);
    expect(r.stderr).toBe(`done\n\n[rackseed: stdout cut at ${OUTPUT_LIMIT_BYTES} bytes; ${more} more were dropped]\n`);
    // A file that large is not read cut: it is an error.
    main.sh(`head -c ${OUTPUT_LIMIT_BYTES + 1} /dev/zero > /tmp/big`);
    const err = await rejection(transport.readFile('/tmp/big'));
    expect(err).toMatchObject({ code: 'STATE_FILE_IO', message: expect.stringContaining(`larger than ${OUTPUT_LIMIT_BYTES} bytes`) });
    main.sh('rm -f /tmp/big');
  });

  it('finds the command\'s PID after whatever root\'s shell startup prints, keeps that output, and the node itself bounds a command with a time limit', async () => {
    // root's shell reads ~/.bashrc for commands over SSH: an HPC node's module setup may print there.
    main.sh("cp /root/.bashrc /root/.bashrc.before 2>/dev/null; printf 'echo startup-noise >&2\\n' >> /root/.bashrc");
    const noisy = await openSshTransport(optionsFor(main));
    try {
      const shell = main.sh('getent passwd root | cut -d: -f7').stdout.trim();
      const r = await noisy.exec('echo err >&2');
      // Before: the noise was taken for the PID line, and the PID line was left in stderr.
      expect(r.stderr).toBe(shell.endsWith('bash') ? 'startup-noise\nerr\n' : 'err\n');
      const pending = noisy.exec('sleep 601', { timeoutMs: 60_000 });
      // While it runs, the node's own limit stands around it (the server's kill needs a connection that may be gone).
      await waitFor('the command to start', () => main.sh('pgrep -fx "sleep 601"').status === 0);
      expect(main.sh('ps -eo args').stdout).toMatch(new RegExp(`^timeout -s KILL ${60 + 15} sh -c sleep 601$`, 'm'));
      main.sh('pkill -x -f "sleep 601"');
      expect((await pending).code).toBe(143);
      const err = await rejection(noisy.exec('sleep 602', { timeoutMs: 1_000 }));
      expect(err.code).toBe('STATE_TIMEOUT');
      await waitFor('the timed-out command to be killed', () => main.sh('pgrep -fx "sleep 602" || echo none').stdout === 'none\n');
    } finally {
      await noisy.close();
      main.sh('if [ -e /root/.bashrc.before ]; then mv /root/.bashrc.before /root/.bashrc; else rm -f /root/.bashrc; fi');
    }
  });

  it('keeps only what the caller asked for per stream (outputLimitBytes), says how much it dropped, and adds no note of its own', async () => {
    const r = await transport.exec("head -c 100000 /dev/zero | tr '\\0' x; printf '%s' 'é€é' >&2", { outputLimitBytes: 1000 });
    expect(r).toEqual({ code: 0, stdout: 'x'.repeat(1000), stderr: 'é€é', dropped: { stdout: 99_000, stderr: 0 } });
    // A cut inside a multi-byte character leaves the character out rather than a U+FFFD.
    const cut = await transport.exec("printf '%s' 'é€é' >&2", { outputLimitBytes: 4 });
    expect(cut).toEqual({ code: 0, stdout: '', stderr: 'é', dropped: { stdout: 0, stderr: 3 } });
  });

  it('cancelled (signal): rejects with STATE_CANCELLED and kills the command, even when close() follows at once', async () => {
    const t = await openSshTransport(optionsFor(main));
    try {
      const cancel = new AbortController();
      const running = t.exec('sleep 603', { timeoutMs: 300_000, signal: cancel.signal });
      await waitFor('the command to start', () => main.sh('pgrep -fx "sleep 603"').status === 0);
      cancel.abort();
      expect(await rejection(running)).toMatchObject({ code: 'STATE_CANCELLED', details: { target: main.name, command: 'sleep 603' } });
      await waitFor('the cancelled command to be killed', () => main.sh('pgrep -fx "sleep 603" || echo none').stdout === 'none\n');
      // Stopped before its PID line arrived (the channel barely asked for): close() waits for the PID, then the kill.
      const early = new AbortController();
      const racing = t.exec('sleep 604', { timeoutMs: 300_000, signal: early.signal });
      setImmediate(() => early.abort());
      expect((await rejection(racing)).code).toBe('STATE_CANCELLED');
      await t.close();
    } finally {
      await t.close();
    }
    // Before: close() ended the connection at once, and the command ran on until the node's own limit (the timeout).
    await waitFor('the command cancelled before its PID came to be killed', () => main.sh('pgrep -fx "sleep 604" || echo none').stdout === 'none\n');
  });

  it('an aborted signal runs nothing', async () => {
    const cancel = new AbortController();
    cancel.abort();
    expect((await rejection(transport.exec('touch /tmp/never', { signal: cancel.signal }))).code).toBe('STATE_CANCELLED');
    expect(main.sh('test -e /tmp/never').status).not.toBe(0);
  });

  it('a killed sshd fails that node\'s pending and later calls with STATE_TRANSPORT; another node carries on', async () => {
    const doomed = await openSshTransport(optionsFor(victim));
    const survivor = await openSshTransport(optionsFor(other));
    try {
      await doomed.exec('true');
      const pending = doomed.exec('touch /tmp/started; sleep 30');
      const otherPending = survivor.exec('sleep 1; echo survived');
      await waitFor('the pending command to start', () => victim.sh('test -e /tmp/started').status === 0);
      victim.kill();
      const lost = await rejection(pending);
      expect(lost.code).toBe('STATE_TRANSPORT');
      expect(lost.details).toMatchObject({ target: victim.name });
      const later = await rejection(doomed.exec('true'));
      expect(later.code).toBe('STATE_TRANSPORT');
      expect(later.message).toBe(lost.message);
      expect((await rejection(doomed.readFile('/etc/hostname'))).code).toBe('STATE_TRANSPORT');
      expect((await rejection(doomed.writeFile('/tmp/x', 'x'))).code).toBe('STATE_TRANSPORT');
      expect((await otherPending).stdout).toBe('survived\n');
      expect((await survivor.exec('hostname')).stdout).toBe(`${other.name}\n`);
    } finally {
      await doomed.close();
      await survivor.close();
    }
  });

  it('a closed transport refuses further calls', async () => {
    const t = await openSshTransport(optionsFor(other));
    await t.close();
    const err = await rejection(t.exec('true'));
    expect(err.code).toBe('STATE_TRANSPORT');
    expect(err.message).toMatch(/closed/);
  });
});

describe('SSH transport into a container with a real systemd', () => {
  let box: SystemdTarget;
  let t: SshTransport;

  beforeAll(async () => {
    box = await startSystemdTarget();
    t = await openSshTransport({ target: box.name, host: box.host, port: box.port, privateKey: box.privateKey, knownHostKey: box.hostKeyLine });
  });

  afterAll(async () => {
    await t?.close();
    await box?.stop();
  });

  it('manages a unit: written over the transport, enabled, started, stopped', async () => {
    expect((await t.exec('systemctl is-system-running')).stdout).toMatch(/^(running|degraded)\n$/);
    expect((await collectFacts(t)).hostname).toBe(box.name);
    await t.writeFile('/etc/systemd/system/rackseed-demo.service', '[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=multi-user.target\n');
    expect((await t.exec('systemctl daemon-reload && systemctl enable --now rackseed-demo')).code).toBe(0);
    expect((await t.exec('systemctl is-enabled rackseed-demo; systemctl is-active rackseed-demo')).stdout).toBe('enabled\nactive\n');
    expect(box.sh('pgrep -x sleep').status).toBe(0);
    expect((await t.exec('systemctl stop rackseed-demo; systemctl is-active rackseed-demo')).stdout).toBe('inactive\n');
  });
});
