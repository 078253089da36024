import { spawn } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN, cliAgainst, cliProcess } from '../support/cli.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { TSX_IMPORT } from '../support/tsx.js';

/** `rackseed events` against a real server: the newest events, one node's, and --follow as a real process. */
let srv: TestServer;

beforeAll(async () => {
  srv = await startTestServer({ inventoryFixture: 'api/inventory.yaml' });
  await srv.store.recordEvent({ node: 'gpu01', event: { type: 'provision_started' } });
  await srv.store.recordEvent({ node: 'head01', event: { type: 'provision_started' } });
  await srv.store.recordEvent({ node: 'gpu01', event: { type: 'failed', reason: 'sha256 mismatch', stage: 'verify' } });
});
afterAll(async () => {
  await srv?.stop();
});

const cli = (...args: string[]): Promise<string> => cliAgainst(srv, args);

/** `rackseed events ... --follow` as a real process against `serverUrl`; what it printed so far, and the process. */
function follow(serverUrl: string, args: string[]) {
  const child = spawn(process.execPath, ['--import', TSX_IMPORT, CLI_MAIN, '--server', serverUrl, '--token', srv.adminToken, 'events', ...args, '--follow', '--interval', '1'], {
    env: { ...process.env, RACKSEED_CONFIG: '/nonexistent.yaml' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const printed = { out: '', err: '' };
  child.stdout.on('data', (c: Buffer) => (printed.out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (printed.err += c.toString()));
  return { child, printed };
}

const lines = (text: string): string[] => text.trim().split('\n').filter(Boolean);

describe('rackseed events', () => {
  it('shows the newest events oldest first, one line each with the node and what happened', async () => {
    // The server's start recorded each inventory node's `assigned` first.
    const out = lines(await cli('events'));
    expect(out.map((l) => l.split('  ').slice(1, 3).join(' ')).slice(-3)).toEqual(['gpu01 provision_started', 'head01 provision_started', 'gpu01 failed']);
    expect(out[0]).toMatch(/ assigned {2}group \S+$/);
    expect(out.at(-1)).toMatch(/^\d{4}-\d\d-\d\dT\S+Z {2}gpu01 {2}failed {2}sha256 mismatch \(stage verify\)$/);
  });

  it("--last N shows only the N newest; a node name narrows to that node's events", async () => {
    expect(lines(await cli('events', '--last', '1')).map((l) => l.split('  ')[1])).toEqual(['gpu01']);
    const gpu = lines(await cli('events', 'gpu01', '--last', '5'));
    expect(gpu.map((l) => l.split('  ')[2])).toEqual(['assigned', 'provision_started', 'failed']);
    expect(lines(await cli('events', 'gpu01', '--last', '2')).map((l) => l.split('  ')[2])).toEqual(['provision_started', 'failed']);
    const json = lines(await cli('--json', 'events', 'head01'));
    expect(json.map((l) => JSON.parse(l) as { node: string; event: { type: string } }).map((e) => [e.node, e.event.type])).toEqual([
      ['head01', 'assigned'],
      ['head01', 'provision_started'],
    ]);
  });

  it('the API: ?last=N is the newest N, oldest first; last with limit is a 400', async () => {
    const get = (q: string) => fetch(`${srv.httpUrl}/api/v1/events?${q}`, { headers: { authorization: `Bearer ${srv.adminToken}` } });
    const r = (await (await get('last=2')).json()) as { events: Array<{ node: string; event: { type: string } }> };
    expect(r.events.map((e) => [e.node, e.event.type])).toEqual([
      ['head01', 'provision_started'],
      ['gpu01', 'failed'],
    ]);
    // `limit` still counts from the oldest, as it did.
    const first = (await (await get('limit=1')).json()) as { events: Array<{ id: number }> };
    const all = (await (await get('')).json()) as { events: Array<{ id: number }> };
    expect(first.events.map((e) => e.id)).toEqual([all.events[0]!.id]);
    const both = await get('last=2&limit=1');
    expect(both.status).toBe(400);
  });

  it('a bad --last is a usage error (exit 2)', async () => {
    const r = await cliProcess(['--server', srv.httpUrl, '--token', srv.adminToken, 'events', '--last', 'ten']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--last must be a whole number');
  });

  it('--follow prints events recorded after it started, and only those after the ones it showed', async () => {
    const { child, printed } = follow(srv.httpUrl, ['gpu01', '--last', '1']);
    try {
      await expect.poll(() => lines(printed.out).length, { timeout: 20_000 }).toBe(1);
      // Another node's event is not shown; gpu01 installs again after its failure.
      expect((await srv.store.recordEvent({ node: 'head01', event: { type: 'stage', stage: 'partition' } })).ok).toBe(true);
      expect((await srv.store.recordEvent({ node: 'gpu01', event: { type: 'provision_started' } })).ok).toBe(true);
      await expect.poll(() => [lines(printed.out).length, printed.err, child.exitCode], { timeout: 20_000 }).toEqual([2, '', null]);
      const got = lines(printed.out);
      expect(got[0]).toContain('gpu01  failed  sha256 mismatch');
      expect(got[1]).toMatch(/ gpu01 {2}provision_started$/);
      expect(child.exitCode).toBeNull();
      expect(printed.err).toBe('');
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('--follow rides out a server that goes away for a while, and prints what was recorded meanwhile', async () => {
    // A relay in front of the server that the test closes and opens again on the same port: a server restart.
    const target = new URL(srv.httpUrl);
    const sockets = new Set<net.Socket>();
    let requests = 0;
    const relay = (): net.Server =>
      net.createServer((client) => {
        const upstream = net.connect(Number(target.port), target.hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => s.destroy());
        }
        client.on('data', (d: Buffer) => (requests += d.toString('latin1').split('GET /api/v1/events').length - 1));
        client.pipe(upstream).pipe(client);
      });
    let server = relay();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const { child, printed } = follow(`http://127.0.0.1:${port}`, ['gpu01', '--last', '0']);
    try {
      // --last 0 shows nothing but follows from the newest event on: recorded once it polls.
      await expect.poll(() => requests, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
      expect((await srv.store.recordEvent({ node: 'gpu01', event: { type: 'stage', stage: 'partition' } })).ok).toBe(true);
      await expect.poll(() => lines(printed.out).length, { timeout: 20_000 }).toBe(1);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await expect.poll(() => printed.err, { timeout: 20_000 }).toContain('cannot reach rackseed');
      expect((await srv.store.recordEvent({ node: 'gpu01', event: { type: 'stage', stage: 'download' } })).ok).toBe(true);
      server = relay();
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      await expect.poll(() => lines(printed.out).length, { timeout: 20_000 }).toBe(2);
      expect(lines(printed.out).map((l) => l.split('  ').slice(2).join(' '))).toEqual(['stage partition', 'stage download']);
      expect(printed.err).toContain('the server answers again');
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
      server.close();
      for (const s of sockets) s.destroy();
    }
  });
});
