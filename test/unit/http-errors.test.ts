import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';
import { RackseedError } from '../../server/model/errors.js';
import { errorHandler } from '../../server/net/http/errors.js';

let server: Server;
let base: string;

beforeAll(async () => {
  const app = express();
  // A route that set another type before it failed, as express.static does for a file.
  app.get('/typed', (_req, res, next) => {
    res.type('application/octet-stream');
    next(new RackseedError('NOT_FOUND', 'gone'));
  });
  // A response already under way when the error arrives (a file stream failing mid-read).
  app.get('/started', (_req, res, next) => {
    res.write('partial');
    setTimeout(() => next(new Error('read failed')), 10);
  });
  app.use(errorHandler(createLogger('silent')));
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

describe('API error handler', () => {
  it('labels its body as JSON whatever type the failing handler had set', async () => {
    const res = await fetch(`${base}/typed`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'gone' } });
  });

  it('closes a response that had already started instead of throwing ERR_HTTP_HEADERS_SENT', async () => {
    const res = await fetch(`${base}/started`);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    // The server is still answering.
    expect((await fetch(`${base}/typed`)).status).toBe(404);
  });
});
