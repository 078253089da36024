import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiClient } from '../../server/cli/client.js';
import { createLogger } from '../../server/log.js';
import { streamNdjson } from '../../server/net/http/ndjson.js';

/**
 * A streamed answer that stays silent while the work runs (no node has finished yet) sends empty lines, which the
 * CLI's reader skips: Node's fetch gave up on a body silent for 5 minutes, and the CLI said "terminated" while a long
 * apply went on. Here the heartbeat is 50 ms and the work 400 ms.
 */
let server: Server;
let base: string;

beforeAll(async () => {
  const app = express();
  app.post('/api/v1/slow', (_req, res) => {
    void streamNdjson(res, createLogger('silent'), async (send) => {
      send({ type: 'start' });
      await new Promise((r) => setTimeout(r, 400));
      return { type: 'summary', ok: true };
    }, 50);
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

it('keeps a silent stream alive with empty lines, which the CLI reader skips', async () => {
  const raw = await (await fetch(`${base}/api/v1/slow`, { method: 'POST' })).text();
  const lines = raw.split('\n');
  expect(lines.filter((l) => l === '').length).toBeGreaterThan(2);
  expect(lines.filter((l) => l !== '').map((l) => JSON.parse(l) as unknown)).toEqual([{ type: 'start' }, { type: 'summary', ok: true }]);
  const seen: unknown[] = [];
  const summary = await new ApiClient(base, 'token').postStream('/slow', {}, (line) => seen.push(line));
  expect(summary).toEqual({ type: 'summary', ok: true });
  expect(seen).toEqual([{ type: 'start' }, { type: 'summary', ok: true }]);
});
