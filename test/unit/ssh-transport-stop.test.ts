import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loginShellLine, PID_MARK } from '../../server/state/transport/login-shell.js';
import { SshTransport } from '../../server/state/transport/ssh.js';
import { rejection } from '../support/rejection.js';

/**
 * The SSH transport's stop paths against a scripted ssh2 client, for the orderings a real sshd makes too rare to
 * hit on purpose (the real sshd runs in test/integration/state-transport.test.ts): a command stopped after its
 * channel opened but before its PID line arrived.
 */

class FakeChannel extends EventEmitter {
  readonly stderr = new EventEmitter();
  closed = false;
  end(): void {}
  close(): void {
    this.closed = true;
  }
}

class FakeClient extends EventEmitter {
  readonly channels: Array<{ line: string; ch: FakeChannel }> = [];
  ended = false;
  exec(line: string, callback: (err: Error | undefined, ch: FakeChannel) => void): boolean {
    const ch = new FakeChannel();
    this.channels.push({ line, ch });
    queueMicrotask(() => callback(undefined, ch));
    return true;
  }
  setNoDelay(): this {
    return this;
  }
  end(): void {
    this.ended = true;
  }
}

const killLine = (pid: number) => loginShellLine(`kill -KILL -${pid} ${pid} 2>/dev/null; true`);
const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

function transportOver(client: FakeClient): SshTransport {
  return new SshTransport('n1', client as never, { maxChannels: 8, fileTimeoutMs: 1_000 });
}

/** A command started over a fresh fake connection, then cancelled before its PID line arrived. */
async function cancelledCommand(command: string): Promise<{ client: FakeClient; t: SshTransport; running: ReturnType<SshTransport['exec']> }> {
  const client = new FakeClient();
  const t = transportOver(client);
  const cancel = new AbortController();
  const running = t.exec(command, { signal: cancel.signal });
  await turns();
  cancel.abort();
  return { client, t, running };
}

afterEach(() => vi.useRealTimers());

describe('SSH transport: a command stopped before its PID line arrived', () => {
  it.each([
    { how: 'timed out', stop: (_: AbortController) => undefined, options: (c: AbortController) => ({ timeoutMs: 20, signal: c.signal }), code: 'STATE_TIMEOUT' },
    { how: 'cancelled', stop: (c: AbortController) => c.abort(), options: (c: AbortController) => ({ timeoutMs: 300_000, signal: c.signal }), code: 'STATE_CANCELLED' },
  ])('$how: the channel stays open for the PID, which is killed, and close() waits for that kill before ending the connection', async ({ stop, options, code }) => {
    const client = new FakeClient();
    const t = transportOver(client);
    const cancel = new AbortController();
    const running = t.exec('sleep 300', options(cancel));
    await turns();
    expect(client.channels).toHaveLength(1);
    stop(cancel);
    expect((await rejection(running)).code).toBe(code);
    const command = client.channels[0]!.ch;
    // Closed now, the PID line on its way would be lost, and the command would run on until the node's own limit.
    expect(command.closed).toBe(false);
    const closing = t.close();
    await turns();
    expect(client.ended).toBe(false);
    command.stderr.emit('data', Buffer.from(`${PID_MARK}4242\n`));
    await turns();
    expect(client.channels.map((c) => c.line)).toEqual([expect.any(String), killLine(4242)]);
    expect(command.closed).toBe(true);
    expect(client.ended).toBe(false);
    client.channels[1]!.ch.emit('close');
    await closing;
    expect(client.ended).toBe(true);
  });

  it('close() does not wait for a PID when the connection is lost meanwhile', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { client, t, running } = await cancelledCommand('sleep 300');
    expect((await rejection(running)).code).toBe('STATE_CANCELLED');
    const closing = t.close();
    await turns();
    expect(client.ended).toBe(false);
    // No timer advanced: only the lost connection can end the wait.
    client.emit('close');
    await closing;
  });

  it('a command whose channel closes without a PID line (it ended) leaves nothing for close() to wait for', async () => {
    const { client, t, running } = await cancelledCommand('true');
    await rejection(running);
    client.channels[0]!.ch.emit('close');
    await t.close();
    expect(client.channels).toHaveLength(1);
    expect(client.ended).toBe(true);
  });
});

describe('SSH transport: what a stopped command printed', () => {
  it.each([
    { how: 'timed out', options: (c: AbortController) => ({ timeoutMs: 50, signal: c.signal }), code: 'STATE_TIMEOUT' },
    { how: 'cancelled', options: (c: AbortController) => ({ timeoutMs: 300_000, signal: c.signal }), code: 'STATE_CANCELLED' },
  ])('$how: the error hands out the output so far (details.partial), without the PID line and cut at the caller\'s limit', async ({ options, code }) => {
    const client = new FakeClient();
    const t = transportOver(client);
    const cancel = new AbortController();
    const running = t.exec('echo started; sleep 300', { ...options(cancel), outputLimitBytes: 10 });
    await turns();
    const { ch } = client.channels[0]!;
    ch.stderr.emit('data', Buffer.from(`${PID_MARK}4242\nwarn\n`));
    ch.emit('data', Buffer.from('started\n'));
    ch.emit('data', Buffer.from('and more than ten bytes\n'));
    if (code === 'STATE_CANCELLED') cancel.abort();
    const err = await rejection(running);
    expect(err.code).toBe(code);
    // Before: the error held none of it (a hung command's last lines are where it hung).
    expect(err.details.partial).toEqual({ stdout: 'started\nan', stderr: 'warn\n', truncated: true });
  });

  it('a caller that did not bound the output (the states: their commands may print secrets) gets none of it in the error', async () => {
    const client = new FakeClient();
    const t = transportOver(client);
    const running = t.exec('cat /etc/secret; sleep 300', { timeoutMs: 50 });
    await turns();
    const { ch } = client.channels[0]!;
    ch.stderr.emit('data', Buffer.from(`${PID_MARK}4242\n`));
    ch.emit('data', Buffer.from('secret-value\n'));
    const err = await rejection(running);
    expect(err.code).toBe('STATE_TIMEOUT');
    expect(err.details).not.toHaveProperty('partial');
    expect(JSON.stringify(err.details)).not.toContain('secret-value');
  });
});
