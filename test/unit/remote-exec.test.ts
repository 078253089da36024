import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RackseedError } from '../../server/model/errors.js';
import type { ResolvedNode } from '../../server/model/inventory.js';
import { NodeIdentity } from '../../server/services/node-identity.js';
import { sshTransportFactory } from '../../server/services/node-transport.js';
import { EXEC_OUTPUT_LIMIT, execOnNodes, type ExecOutcome } from '../../server/services/remote-exec.js';
import { FakeTransport } from '../../server/state/transport/fake.js';
import type { ExecOptions, Transport } from '../../server/state/types.js';
import { waitFor } from '../support/wait.js';

const node = (name: string) => ({ name }) as ResolvedNode;
const options = { concurrency: 3, timeoutMs: 5_000, connectTimeoutMs: 1_000 };

/** A transport answering `exec` with `answer` (failure injection; the real SSH runs in test/integration/state-cli.test.ts). */
function transportAnswering(answer: (target: string, options: ExecOptions) => Promise<{ code: number; stdout: string; stderr: string }>, requested: string[] = []): (n: ResolvedNode) => Promise<Transport> {
  return async (n) => {
    requested.push(n.name);
    if (n.name === 'nopin') throw new RackseedError('SSH_HOST_KEY_UNKNOWN', 'nopin has no pinned host key');
    return {
      target: n.name,
      exec: (_command, o = {}) => answer(n.name, o),
      readFile: async () => undefined,
      writeFile: async () => undefined,
      close: async () => undefined,
    };
  };
}

/** Lets every pending callback and timer-free promise chain run. */
const settleAll = () => new Promise((r) => setImmediate(r)).then(() => new Promise((r) => setImmediate(r)));

describe('execOnNodes', () => {
  it('hands each node its outcome as it finishes, one that cannot be reached fails alone, and answers only the counts', async () => {
    const seen: ExecOutcome[] = [];
    const counts = await execOnNodes(
      [node('slow'), node('nopin'), node('fast')],
      'true',
      options,
      transportAnswering(async (t) => {
        if (t === 'slow') await new Promise((r) => setTimeout(r, 50));
        return { code: t === 'fast' ? 0 : 2, stdout: `${t}\n`, stderr: '' };
      }),
      (o) => void seen.push(o),
    );
    // The outcomes are not kept to the end (10,000 nodes' output would be): the caller streams them.
    expect(counts).toEqual({ nodes: 3, succeeded: 1, exitNonZero: 1, unfinished: 1 });
    expect(seen.map((o) => [o.node, o.ran, o.code ?? null, o.errorCode ?? null])).toEqual([
      ['nopin', false, null, 'SSH_HOST_KEY_UNKNOWN'],
      ['fast', true, 0, null],
      ['slow', true, 2, null],
    ]);
    expect(seen[0]?.error).toBe('nopin has no pinned host key');
  });

  it('asks the transport to keep at most EXEC_OUTPUT_LIMIT bytes per stream, rather than cutting what it buffered', async () => {
    const seen: ExecOutcome[] = [];
    const transports: FakeTransport[] = [];
    const counts = await execOnNodes(
      [node('n1')],
      'yes',
      options,
      async (n) => {
        const t = new FakeTransport(n.name, {
          // Asked without a limit, the fake would hand back all it has: the test must see the limit asked for.
          handler: (_command, _transport, o) => {
            if (o.outputLimitBytes !== EXEC_OUTPUT_LIMIT) throw new Error(`asked for ${o.outputLimitBytes} bytes, not EXEC_OUTPUT_LIMIT`);
            return { code: 0, stdout: 'y\n'.repeat(EXEC_OUTPUT_LIMIT), stderr: 'small' };
          },
        });
        transports.push(t);
        return t;
      },
      (o) => void seen.push(o),
    );
    expect(counts.succeeded).toBe(1);
    expect(seen[0]).toMatchObject({ stdout: 'y\n'.repeat(EXEC_OUTPUT_LIMIT / 2), stderr: 'small', truncated: true });
  });

  it('cuts each stream of a transport that ignores the limit on a character boundary, and says so', async () => {
    // Three-byte characters: the limit falls inside one of them.
    const big = '€'.repeat(EXEC_OUTPUT_LIMIT);
    const seen: ExecOutcome[] = [];
    const limits: Array<number | undefined> = [];
    await execOnNodes(
      [node('n1')],
      'x',
      { ...options, concurrency: 1 },
      transportAnswering(async (_t, o) => {
        limits.push(o.outputLimitBytes);
        return { code: 0, stdout: big, stderr: 'small' };
      }),
      (o) => void seen.push(o),
    );
    expect(limits).toEqual([EXEC_OUTPUT_LIMIT]);
    const [o] = seen;
    expect(o?.truncated).toBe(true);
    expect(o!.stdout).toBe('€'.repeat(Math.floor(EXEC_OUTPUT_LIMIT / 3)));
    expect(o!.stderr).toBe('small');
  });

  it('a command that timed out ran and was killed: reported as timed out, not as not run', async () => {
    const seen: ExecOutcome[] = [];
    const counts = await execOnNodes(
      [node('n1')],
      'sleep 600',
      { ...options, timeoutMs: 5_000 },
      transportAnswering(async (t) => {
        throw new RackseedError('STATE_TIMEOUT', `${t}: command timed out after 5000 ms: sleep 600`);
      }),
      (o) => void seen.push(o),
    );
    expect(seen).toEqual([expect.objectContaining({ node: 'n1', ran: false, timedOut: true, error: 'killed after 5 s', errorCode: 'STATE_TIMEOUT' })]);
    expect(counts).toEqual({ nodes: 1, succeeded: 0, exitNonZero: 0, unfinished: 1 });
  });

  it.each([
    { how: 'timed out', code: 'STATE_TIMEOUT' as const, expected: { timedOut: true, error: 'killed after 5 s' } },
    { how: 'cancelled', code: 'STATE_CANCELLED' as const, expected: { error: 'cancelled: killed' } },
  ])('$how: the outcome holds what the command printed until it was killed (the error\'s details.partial)', async ({ code, expected }) => {
    const seen: ExecOutcome[] = [];
    await execOnNodes(
      [node('n1'), node('n2')],
      'echo started; sleep 600',
      { ...options, timeoutMs: 5_000 },
      transportAnswering(async (t) => {
        // n2's transport kept more than the limit (one that ignored it): cut here as any output.
        const partial = t === 'n1' ? { stdout: 'started\n', stderr: 'warn\n', truncated: false } : { stdout: 'x'.repeat(EXEC_OUTPUT_LIMIT + 1), stderr: '', truncated: false };
        throw new RackseedError(code, `${t}: stopped`, { partial });
      }),
      (o) => void seen.push(o),
    );
    expect(seen.find((o) => o.node === 'n1')).toEqual({ node: 'n1', ran: false, stdout: 'started\n', stderr: 'warn\n', ...expected, errorCode: code, durationMs: expect.any(Number) });
    expect(seen.find((o) => o.node === 'n2')).toMatchObject({ stdout: 'x'.repeat(EXEC_OUTPUT_LIMIT), stderr: '', truncated: true, ...expected });
  });

  it('a transport that never answers is abandoned at the backstop deadline', async () => {
    const seen: ExecOutcome[] = [];
    await execOnNodes([node('hung')], 'x', { concurrency: 1, timeoutMs: 10, connectTimeoutMs: 10, graceMs: 10 }, transportAnswering(() => new Promise(() => undefined)), (o) => void seen.push(o));
    expect(seen).toEqual([expect.objectContaining({ node: 'hung', ran: false, errorCode: 'STATE_TIMEOUT' })]);
    expect(seen[0]?.timedOut).toBeUndefined();
  });

  it('starts no other node while the caller has not taken the last answer (a slow client holds the lane)', async () => {
    const requested: string[] = [];
    let release: () => void = () => undefined;
    let delivered = 0;
    const run = execOnNodes(
      [node('a'), node('b')],
      'x',
      { ...options, concurrency: 1 },
      transportAnswering(async () => ({ code: 0, stdout: '', stderr: '' }), requested),
      () => {
        delivered++;
        return new Promise<void>((resolve) => (release = resolve));
      },
    );
    while (delivered === 0) await settleAll();
    await settleAll();
    expect(requested).toEqual(['a']);
    release();
    while (delivered === 1) await settleAll();
    release();
    expect(await run).toMatchObject({ nodes: 2, succeeded: 2 });
    expect(requested).toEqual(['a', 'b']);
  });

  it('cancelled: the running command gets the signal (the transport kills it) and no further node starts', async () => {
    const requested: string[] = [];
    const seen: ExecOutcome[] = [];
    const cancel = new AbortController();
    const counts = await execOnNodes(
      [node('a'), node('b'), node('c')],
      'sleep 600',
      { ...options, concurrency: 1, signal: cancel.signal },
      transportAnswering(
        (t, o) =>
          new Promise((_resolve, reject) => {
            o.signal?.addEventListener('abort', () => reject(new RackseedError('STATE_CANCELLED', `${t}: command cancelled: sleep 600`)));
            cancel.abort();
          }),
        requested,
      ),
      (o) => void seen.push(o),
    );
    expect(requested).toEqual(['a']);
    expect(seen).toEqual([expect.objectContaining({ node: 'a', ran: false, errorCode: 'STATE_CANCELLED' })]);
    expect(counts).toEqual({ nodes: 3, succeeded: 0, exitNonZero: 0, unfinished: 3 });
  });
});

describe('execOnNodes over the SSH transport factory: cancelled while a node is still connecting', () => {
  it('closes the half-open connection and reports the node cancelled, without waiting out the connect timeout', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-exec-connect-'));
    // Failure injection: a "node" that accepts TCP and never says a word of SSH (a hung sshd, a stalled host).
    const accepted: Socket[] = [];
    let closedByServer = 0;
    const silent = createServer((sock) => {
      accepted.push(sock);
      // Reads (and drops) the client's greeting: a socket never read would never see the client close it either.
      sock.resume();
      sock.on('error', () => undefined);
      sock.on('close', () => closedByServer++);
    });
    try {
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const identity = new NodeIdentity(dir);
      // A pin, as after provisioning: without one the factory would refuse before connecting.
      await identity.hostKey('stalls', '127.0.0.1');
      await identity.hostKey('later', '127.0.0.1');
      const port = (silent.address() as AddressInfo).port;
      // Ten minutes: the test's own timeout (30 s) fails it if the cancel waits for the connect timeout, as it did.
      const transportFor = sshTransportFactory({ identity, sshPort: port, connectTimeoutMs: 600_000 });
      const cancel = new AbortController();
      const seen: ExecOutcome[] = [];
      const nodes = [{ name: 'stalls', ip: '127.0.0.1' }, { name: 'later', ip: '127.0.0.1' }] as ResolvedNode[];
      const run = execOnNodes(nodes, 'true', { concurrency: 1, timeoutMs: 600_000, connectTimeoutMs: 600_000, signal: cancel.signal }, transportFor, (o) => void seen.push(o));
      await waitFor('the node to accept the connection', () => accepted.length === 1);
      cancel.abort();
      expect(await run).toEqual({ nodes: 2, succeeded: 0, exitNonZero: 0, unfinished: 2 });
      expect(seen).toEqual([expect.objectContaining({ node: 'stalls', ran: false, errorCode: 'STATE_CANCELLED', error: 'cancelled while connecting: not run' })]);
      await waitFor('the half-open connection to be closed', () => closedByServer === 1);
      expect(accepted).toHaveLength(1);
    } finally {
      for (const sock of accepted) sock.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
