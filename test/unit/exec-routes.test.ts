import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInventory } from '../../server/inventory/index.js';
import { createLogger } from '../../server/log.js';
import { errorHandler } from '../../server/net/http/errors.js';
import { execRoutes } from '../../server/net/http/exec-routes.js';
import { RackseedError } from '../../server/model/errors.js';
import { LocalTransport } from '../../server/state/transport/local.js';
import { FILE, withNodes } from '../fixtures/inventory/inventories.js';
import { waitFor } from '../support/wait.js';
import { processAlive } from '../support/process-output.js';

/** The route's checks of a request, before anything runs (the real SSH runs in test/integration/state-cli.test.ts). */
let server: Server;
let base: string;
const ran: string[] = [];
/** What became of the command on gpu02, which runs until it is cancelled. */
const hanging: string[] = [];

/** The exec route (4 nodes at once, a 1 s connect timeout) on a loopback port, behind the error handler. */
async function listen(deps: Omit<Parameters<typeof execRoutes>[0], 'concurrency' | 'connectTimeoutMs'>): Promise<Server> {
  const app = express();
  app.use('/api/v1', execRoutes({ concurrency: 4, connectTimeoutMs: 1_000, ...deps }));
  app.use(errorHandler(createLogger('silent')));
  return new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
}

beforeAll(async () => {
  const inventory = { inventory: parseInventory(withNodes('  - { name: gpu01, group: gpu, ip: 10.0.1.1 }\n  - { name: gpu02, group: head, ip: 10.0.1.2 }\n'), FILE) };
  server = await listen({
    inventory,
    log: createLogger('silent'),
    transportFor: async (node) => {
      ran.push(node.name);
      if (node.name !== 'gpu02') throw new Error('no transport in this test');
      return {
        target: node.name,
        exec: (_command, options = {}) =>
          new Promise((_resolve, reject) => {
            hanging.push('started');
            options.signal?.addEventListener('abort', () => {
              hanging.push('cancelled');
              reject(new RackseedError('STATE_CANCELLED', 'gpu02: command cancelled'));
            });
          }),
        readFile: async () => undefined,
        writeFile: async () => undefined,
        close: async () => void hanging.push('closed'),
      };
    },
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/exec`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const post = async (body: unknown) => {
  const res = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  // The error's message, when the answer is one (JSON escapes its quotes).
  const message = text.startsWith('{"error"') ? (JSON.parse(text) as { error: { message: string } }).error.message : text;
  return { status: res.status, text: message };
};

describe('POST /exec refuses a bad request before anything runs', () => {
  it.each([
    { body: { command: 'true' }, status: 400, says: '"targets" must be a non-empty list' },
    { body: { targets: [], command: 'true' }, status: 400, says: '"targets" must be a non-empty list' },
    { body: { targets: ['gpu01'] }, status: 400, says: '"command" must be a non-empty string' },
    { body: { targets: ['gpu01'], command: '   ' }, status: 400, says: '"command" must be a non-empty string' },
    { body: { targets: ['gpu01'], command: 'echo a\u0000b' }, status: 400, says: 'NUL' },
    { body: { targets: ['gpu01'], command: 'x'.repeat(64 * 1024 + 1) }, status: 400, says: 'put it in a script' },
    { body: { targets: ['gpu01'], command: 'true', timeoutSeconds: 0 }, status: 400, says: '"timeoutSeconds" must be a whole number' },
    { body: { targets: ['gpu01'], command: 'true', timeoutSeconds: 1.5 }, status: 400, says: '"timeoutSeconds" must be a whole number' },
    { body: { targets: ['gpu01'], command: 'true', timeoutSeconds: 86_401 }, status: 400, says: '"timeoutSeconds" must be a whole number' },
    { body: { targets: ['gpu01'], command: 'true', Timeout: 5 }, status: 400, says: 'unknown key "Timeout"' },
    { body: { targets: ['gpu99'], command: 'true' }, status: 404, says: 'gpu99' },
  ])('$says ($status)', async ({ body, status, says }) => {
    const r = await post(body);
    expect(r.status).toBe(status);
    expect(r.text).toContain(says);
    expect(ran).toEqual([]);
  });

  it('a good request streams a start line, one line per node and the summary', async () => {
    const r = await post({ targets: ['gpu01'], command: 'true' });
    expect(r.status).toBe(200);
    const lines = r.text.trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    expect(lines.map((l) => l.type)).toEqual(['start', 'node', 'summary']);
    expect(lines[1]).toMatchObject({ outcome: { node: 'gpu01', ran: false, error: 'no transport in this test' } });
    expect(lines[2]).toEqual({ type: 'summary', nodes: 1, succeeded: 0, exitNonZero: 0, unfinished: 1 });
    expect(ran).toEqual(['gpu01']);
  });
});

describe('POST /exec when the client goes away', () => {
  it('cancels: the command running on the node is told to stop (the transport kills it) and the connection closed', async () => {
    // node:http rather than fetch: the client's socket is destroyed at once, as when the CLI dies.
    const req = request(base, { method: 'POST', headers: { 'content-type': 'application/json' } });
    req.end(JSON.stringify({ targets: ['gpu02'], command: 'sleep 300' }));
    const res = await new Promise<IncomingMessage>((resolve) => req.once('response', resolve));
    await new Promise((resolve) => res.once('data', resolve));
    await waitFor('the command to start', () => hanging.includes('started'));
    req.destroy();
    await waitFor('the command to be cancelled and its transport closed', () => hanging.join(' ') === 'started cancelled closed');
  });
});

describe('POST /exec when the client stays connected but stops reading', () => {
  it('cancels once an answer has waited drainTimeoutMs for it: the running command is killed, no further node starts, and it is logged', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-exec-stall-'));
    const pidFile = path.join(dir, 'sleep.pid');
    const local = new LocalTransport('sleeper');
    const logLines: string[] = [];
    const requested: string[] = [];
    let requestedAtStall: number | undefined;
    const sleeperErrors: string[] = [];
    const bigNodes = Array.from({ length: 200 }, (_, i) => `big${String(i + 1).padStart(3, '0')}`);
    const inventory = {
      inventory: parseInventory(withNodes(['sleeper', ...bigNodes].map((n, i) => `  - { name: ${n}, group: gpu, ip: 10.0.${Math.floor(i / 200) + 2}.${(i % 200) + 1} }\n`).join('')), FILE),
    };
    const stalled = await listen({
      inventory,
      drainTimeoutMs: 500,
      log: createLogger('info', {
        write: (line: string) => {
          logLines.push(line);
          if (line.includes('the client stopped reading')) requestedAtStall = requested.length;
        },
      }),
      transportFor: async (node) => {
        requested.push(node.name);
        if (node.name === 'sleeper') {
          // A real command on this machine: only a kill stops it before it writes its marker.
          return {
            target: node.name,
            exec: (_command, options) =>
              local.exec(`sleep 300 & echo $! > ${pidFile}; wait; touch ${path.join(dir, 'marker')}`, options).catch((err: RackseedError) => {
                sleeperErrors.push(err.code);
                throw err;
              }),
            readFile: async () => undefined,
            writeFile: async () => undefined,
            close: async () => undefined,
          };
        }
        // The other nodes answer at once with all the output a node may send: enough to fill the socket's buffers.
        return {
          target: node.name,
          exec: async () => {
            await waitFor('the sleeper to run', () => existsSync(pidFile));
            return { code: 0, stdout: 'x'.repeat(64 * 1024), stderr: 'y'.repeat(64 * 1024) };
          },
          readFile: async () => undefined,
          writeFile: async () => undefined,
          close: async () => undefined,
        };
      },
    });
    const body = JSON.stringify({ targets: ['sleeper', 'big[001-200]'], command: 'anything' });
    // A raw client that sends its request and never reads a byte of the answer, while staying connected.
    const client = connect((stalled.address() as AddressInfo).port, '127.0.0.1');
    try {
      client.pause();
      client.on('error', () => undefined);
      client.write(`POST /api/v1/exec HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      const pid = await waitFor('the sleeper to start', () => (existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8'))) || undefined);
      // Before: every lane waited for the client forever, and the sleeper ran on until its timeout.
      await waitFor('the sleeper to be killed', () => !processAlive(pid));
      expect(sleeperErrors).toEqual(['STATE_CANCELLED']);
      expect(existsSync(path.join(dir, 'marker'))).toBe(false);
      // Nothing more started once it was cancelled (the socket's buffers hold only some of the answers).
      expect(requested.length).toBe(requestedAtStall);
      expect(requested.length).toBeLessThan(1 + bigNodes.length);
      const stall = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'exec cancelled: the client stopped reading its answers');
      expect(stall).toMatchObject({ level: 40, targets: ['sleeper', 'big[001-200]'], command: 'anything', drainTimeoutMs: 500 });
    } finally {
      client.destroy();
      await local.close();
      await new Promise<void>((resolve) => stalled.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

