/**
 * The local transport on this machine: commands through sh, timeouts that kill the whole command, atomic writes
 * with mode and owner, and a closed transport that refuses.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectFacts } from '../../server/state/collect-facts.js';
import { cmdRun } from '../../server/state/modules/cmd.js';
import { builtinModules } from '../../server/state/modules/index.js';
import { runPlan } from '../../server/state/run/runner.js';
import { MAX_ARGUMENT_BYTES } from '../../server/state/transport/argument-limit.js';
import { LocalTransport } from '../../server/state/transport/local.js';
import { facts, state } from '../fixtures/state-modules/harness.js';
import { rejection } from '../support/rejection.js';
import { waitFor } from '../support/wait.js';
import { processAlive } from '../support/process-output.js';

let dir: string;
let local: LocalTransport;


beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('the local transport tests change file owners: run as root');
  dir = mkdtempSync(path.join(tmpdir(), 'rackseed-local-transport-'));
  local = new LocalTransport('this-host');
});

afterAll(async () => {
  await local?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('local transport', () => {
  it('runs commands under sh with stdin, exit code, stdout and stderr', async () => {
    expect(await local.exec('echo "$0"; echo err >&2; exit 4')).toEqual({ code: 4, stdout: 'sh\n', stderr: 'err\n' });
    expect((await local.exec('tr a-z A-Z', { stdin: 'abc' })).stdout).toBe('ABC');
    expect((await local.exec('cat; echo eof')).stdout).toBe('eof\n');
    expect((await local.exec('kill -TERM $$')).code).toBe(128 + 15);
  });

  it('kills a command that outlives its timeout, with what it started, and keeps working', async () => {
    const pidFile = path.join(dir, 'child.pid');
    const err = await rejection(local.exec(`sleep 600 & echo $! > ${pidFile}; wait`, { timeoutMs: 500 }));
    expect(err.code).toBe('STATE_TIMEOUT');
    expect(err.details).toMatchObject({ target: 'this-host', timeoutMs: 500 });
    const child = Number(readFileSync(pidFile, 'utf8'));
    await waitFor('the background child to be killed', () => !processAlive(child));
    expect((await local.exec('echo next')).stdout).toBe('next\n');
  });

  it('keeps only what the caller asked for per stream (outputLimitBytes) and says how much it dropped; unbounded by default', async () => {
    const command = "head -c 100000 /dev/zero | tr '\\0' x; printf 'é€' >&2";
    expect(await local.exec(command, { outputLimitBytes: 1000 })).toEqual({ code: 0, stdout: 'x'.repeat(1000), stderr: 'é€', dropped: { stdout: 99_000, stderr: 0 } });
    expect((await local.exec(command)).stdout).toHaveLength(100_000);
  });

  it('cancelled (signal): kills the command with what it started and rejects with STATE_CANCELLED; an aborted signal starts nothing', async () => {
    const pidFile = path.join(dir, 'cancelled.pid');
    const cancel = new AbortController();
    const running = local.exec(`sleep 300 & echo $! > ${pidFile}; wait`, { signal: cancel.signal });
    const pid = await waitFor('the command to start', () => (existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8'))) || undefined);
    cancel.abort();
    expect((await rejection(running)).code).toBe('STATE_CANCELLED');
    await waitFor('the command\'s child to be killed', () => !processAlive(pid));
    expect((await rejection(local.exec(`touch ${path.join(dir, 'never')}`, { signal: cancel.signal }))).code).toBe('STATE_CANCELLED');
    expect(existsSync(path.join(dir, 'never'))).toBe(false);
  });

  it('a command stopped by its timeout or a cancel hands out what it printed until then (details.partial), at most the limit per stream', async () => {
    // Before: the error carried none of it, and `rackseed exec` showed a timed-out node with no output at all.
    const timedOut = await rejection(local.exec("echo started; echo 'about to hang' >&2; head -c 100 /dev/zero | tr '\\0' y; sleep 300", { timeoutMs: 3_000, outputLimitBytes: 20 }));
    expect(timedOut.code).toBe('STATE_TIMEOUT');
    expect(timedOut.details.partial).toEqual({ stdout: `started\n${'y'.repeat(12)}`, stderr: 'about to hang\n', truncated: true });

    const marker = path.join(dir, 'printed');
    const cancel = new AbortController();
    const running = local.exec(`echo first; echo second >&2; touch ${marker}; sleep 300`, { signal: cancel.signal, outputLimitBytes: 1000 });
    await waitFor('the command to print', () => existsSync(marker));
    cancel.abort();
    const cancelled = await rejection(running);
    expect(cancelled.code).toBe('STATE_CANCELLED');
    expect(cancelled.details.partial).toEqual({ stdout: 'first\n', stderr: 'second\n', truncated: false });
    // A caller that did not bound the output (the states, whose commands may print secrets) gets none in the error:
    // an error object can end up in a log line whole.
    const unbounded = await rejection(local.exec('echo secret-value; sleep 300', { timeoutMs: 1_000 }));
    expect(unbounded.code).toBe('STATE_TIMEOUT');
    expect(unbounded.details).not.toHaveProperty('partial');
  });

  it('runs the longest command one argument holds, and refuses a longer one with STATE_COMMAND_TOO_LONG without starting it', async () => {
    const tail = '\necho long';
    expect(await local.exec(`#${'x'.repeat(MAX_ARGUMENT_BYTES - 1 - tail.length)}${tail}`)).toEqual({ code: 0, stdout: 'long\n', stderr: '' });

    const marker = path.join(dir, 'too-long-ran');
    const head = `touch ${marker} #`;
    const err = await rejection(local.exec(`${head}${'x'.repeat(MAX_ARGUMENT_BYTES + 1 - head.length)}`));
    expect(err).toMatchObject({ code: 'STATE_COMMAND_TOO_LONG', details: { target: 'this-host', bytes: MAX_ARGUMENT_BYTES + 1, maxBytes: MAX_ARGUMENT_BYTES } });
    expect(err.message).toMatch(/^this-host: command of \d+ bytes is too long .*; pass data on stdin or in a file: touch /);
    expect(existsSync(marker)).toBe(false);

    // The limit is in bytes: fewer characters than the limit, but two bytes each.
    const wideCommand = `: ${'é'.repeat((MAX_ARGUMENT_BYTES + 1) / 2)}`;
    expect(wideCommand.length).toBeLessThan(MAX_ARGUMENT_BYTES);
    expect(await rejection(local.exec(wideCommand))).toMatchObject({ code: 'STATE_COMMAND_TOO_LONG', details: { bytes: MAX_ARGUMENT_BYTES + 3 } });
    expect((await local.exec('echo still here')).stdout).toBe('still here\n');
  });

  it('refuses with STATE_COMMAND_TOO_LONG when the command and the environment together pass ARG_MAX', async () => {
    // Linux caps arguments plus environment at 6 MiB whatever the stack limit: 56 variables of 125 KiB pass it.
    const names = Array.from({ length: 56 }, (_, i) => `RACKSEED_TEST_BULK_${i}`);
    for (const name of names) process.env[name] = 'x'.repeat(125 * 1024);
    let err;
    try {
      err = await rejection(local.exec('echo never'));
    } finally {
      for (const name of names) delete process.env[name];
    }
    expect(err).toMatchObject({ code: 'STATE_COMMAND_TOO_LONG', details: { target: 'this-host', bytes: 10 } });
    expect(err.message).toMatch(/ARG_MAX\); pass data on stdin or in a file: echo never$/);
    expect((await local.exec('echo still here')).stdout).toBe('still here\n');
  });

  it('a cmd.run too long to start fails its state with what to do, and the run goes on', async () => {
    const marker = path.join(dir, 'after-ran');
    const states = [state('cmd.run', `: ${'x'.repeat(200 * 1024)}`, {}, 'too-long'), state('cmd.run', `touch ${marker}`, {}, 'after')].map((s, index) => ({ ...s, index }));
    const context = { transport: local, facts: facts(), timeoutMs: 10_000, renderTemplate: (t: string) => t, readSource: () => Promise.reject(new Error('no sources')) };
    const outcome = await runPlan({ states }, { registry: new Map([['cmd.run', cmdRun]]), context, options: { test: false } });
    expect(outcome.aborted).toBeUndefined();
    expect(outcome.results.map((r) => [r.id, r.result])).toEqual([['too-long', false], ['after', true]]);
    expect(outcome.results[0]!.comment).toMatch(/^this-host: command of \d+ bytes is too long .*\(at most 131071\); pass data on stdin or in a file: /);
    expect(existsSync(marker)).toBe(true);
  });

  it('collects this machine\'s facts', async () => {
    const facts = await collectFacts(local);
    expect(facts.osId).not.toBe('unknown');
    expect(facts.cpus).toBeGreaterThan(0);
    expect(facts.kernel).toBe(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
  });

  it('reads files, undefined when missing, STATE_FILE_IO for a directory', async () => {
    writeFileSync(path.join(dir, 'r'), Buffer.from([0, 1, 2, 255]));
    expect(await local.readFile(path.join(dir, 'r'))).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(await local.readFile(path.join(dir, 'missing'))).toBeUndefined();
    expect(await local.readFile(path.join(dir, 'r', 'below-a-file'))).toBeUndefined();
    expect((await rejection(local.readFile(dir))).code).toBe('STATE_FILE_IO');
  });

  it('writes atomically with mode, owner and group; keeps an old file\'s mode and owner; new files get 0644', async () => {
    const f = path.join(dir, 'w');
    await local.writeFile(f, 'one', { mode: '0640', owner: 'nobody', group: 'daemon' });
    const st = statSync(f);
    expect([st.mode & 0o7777, st.uid, readFileSync(f, 'utf8')]).toEqual([0o640, 65534, 'one']);
    expect(st.gid).toBe(1);
    await local.writeFile(f, 'two');
    expect([statSync(f).mode & 0o7777, statSync(f).uid, readFileSync(f, 'utf8')]).toEqual([0o640, 65534, 'two']);
    const g = path.join(dir, 'kept');
    writeFileSync(g, 'old');
    chmodSync(g, 0o600);
    chownSync(g, 1, 1);
    await local.writeFile(g, 'new');
    expect([statSync(g).mode & 0o7777, statSync(g).uid]).toEqual([0o600, 1]);
    await local.writeFile(path.join(dir, 'fresh'), 'x');
    expect(statSync(path.join(dir, 'fresh')).mode & 0o7777).toBe(0o644);
    expect(readdirSync(dir).filter((n) => n.includes('rackseed-tmp'))).toEqual([]);
  });

  it('replaces the file by rename: an open reader keeps the old content whole', async () => {
    const f = path.join(dir, 'renamed');
    writeFileSync(f, 'old');
    const inodeBefore = statSync(f).ino;
    await local.writeFile(f, 'new');
    expect(statSync(f).ino).not.toBe(inodeBefore);
  });

  it('writes through a symlink (also a dangling one), leaving the link', async () => {
    const real = path.join(dir, 'real');
    const link = path.join(dir, 'link');
    symlinkSync('real', link);
    await local.writeFile(link, 'via link');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe('real');
    expect(readFileSync(real, 'utf8')).toBe('via link');
    const dangling = path.join(dir, 'dangling');
    symlinkSync('target-to-be', dangling);
    await local.writeFile(dangling, 'created');
    expect(lstatSync(dangling).isSymbolicLink()).toBe(true);
    expect(readFileSync(path.join(dir, 'target-to-be'), 'utf8')).toBe('created');
  });

  it('fails with STATE_FILE_IO for a missing directory, an unknown owner or a bad mode, leaving nothing behind', async () => {
    expect((await rejection(local.writeFile(path.join(dir, 'no', 'such'), 'x'))).code).toBe('STATE_FILE_IO');
    const owner = await rejection(local.writeFile(path.join(dir, 'owned'), 'x', { owner: 'no-such-user' }));
    expect(owner.code).toBe('STATE_FILE_IO');
    expect(owner.message).toMatch(/no-such-user/);
    expect(existsSync(path.join(dir, 'owned'))).toBe(false);
    expect((await rejection(local.writeFile(path.join(dir, 'm'), 'x', { mode: '999' }))).code).toBe('STATE_FILE_IO');
    expect(readdirSync(dir).filter((n) => n.includes('rackseed-tmp'))).toEqual([]);
  });

  it('file.directory with a mode settles under a setgid parent: the second run changes nothing (real chmod and stat)', async () => {
    const shared = path.join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o2775); // new subdirectories inherit setgid, as in a group-shared tree
    const fn = builtinModules().get('file.directory')!;
    const ctx = { transport: local, facts: facts(), timeoutMs: 10_000, renderTemplate: (t: string) => t, readSource: () => Promise.reject(new Error('no sources')) };
    const s = state('file.directory', path.join(shared, 'data'), { mode: '0755' });
    const changes: Array<Record<string, unknown>> = [];
    for (let run = 0; run < 3; run++) {
      const checked = await fn.check(s, ctx);
      changes.push(checked.changes);
      if (!checked.inSync) await fn.apply(s, ctx, checked);
    }
    expect(changes.slice(1)).toEqual([{}, {}]);
    expect((statSync(path.join(shared, 'data')).mode & 0o7777).toString(8)).toBe('755');
  });

  it('a closed transport refuses, and close ends a running command', async () => {
    const t = new LocalTransport('closing');
    const running = t.exec('sleep 600');
    await t.close();
    expect((await rejection(running)).code).toBe('STATE_TRANSPORT');
    expect((await rejection(t.exec('true'))).code).toBe('STATE_TRANSPORT');
    expect((await rejection(t.readFile('/etc/hostname'))).code).toBe('STATE_TRANSPORT');
  });
});
