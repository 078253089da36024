import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../../server/store/postgres.js';
import { createPool, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_QUERY_TIMEOUT_MS } from '../../../server/store/postgres-open.js';

/**
 * A database behind a partition: the TCP connection is taken, then nothing ever answers (dropped packets, not a
 * refusal). Stands in for PostgreSQL on loopback; no real database is needed to show that nothing waits forever.
 */
let blackHole: Server;
let port: number;
const sockets: Socket[] = [];

beforeAll(async () => {
  blackHole = createServer((s) => void sockets.push(s));
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  port = (blackHole.address() as { port: number }).port;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => blackHole.close(() => resolve()));
});

describe('PostgreSQL store: a database that stops answering', () => {
  it('fails the open with STORE_UNAVAILABLE after the connect timeout instead of hanging', async () => {
    // Without the limit this open waits on the black hole for good, and the test's own timeout fails it.
    await expect(PostgresStore.open({ url: `postgres://rackseed:secret@127.0.0.1:${port}/rackseed`, connectTimeoutMs: 300 })).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
      message: expect.not.stringContaining('secret'),
    });
  });

  it('every pool the store opens has a connect limit, a query limit and TCP keepalive unless told otherwise', async () => {
    const pool = createPool({ url: `postgres://rackseed@127.0.0.1:${port}/rackseed` });
    try {
      expect(pool.options).toMatchObject({ connectionTimeoutMillis: DEFAULT_CONNECT_TIMEOUT_MS, query_timeout: DEFAULT_QUERY_TIMEOUT_MS, keepAlive: true });
      expect(DEFAULT_CONNECT_TIMEOUT_MS).toBeGreaterThan(0);
    } finally {
      await pool.end();
    }
  });
});
