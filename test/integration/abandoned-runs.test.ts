import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../server/config.js';
import { createLogger } from '../../server/log.js';
import { startServer } from '../../server/main.js';
import { startTestServer } from '../support/server.js';

/**
 * A run the server never recorded the end of (it stopped mid-run, or its store failed at the end) read "running" for
 * ever. The next start of that server closes its own such runs as failed; another server's are left alone.
 */
describe('runs left running by an earlier start', () => {
  it('are closed as failed at the next start of their server, with the reason; another server\'s stay running', async () => {
    const first = await startTestServer({ inventoryFixture: 'api/inventory.yaml' });
    const configFile = path.join(first.dir, 'rackseed.yaml');
    try {
      const started = Date.now() - 60_000;
      await first.store.createRun({ id: 'left', node: 'head01', kind: 'apply', result: 'running', startedAt: started, summary: { server: 'rackseed' }, details: [] });
      await first.store.createRun({ id: 'theirs', node: 'head01', kind: 'apply', result: 'running', startedAt: started, summary: { server: 'rs2' }, details: [] });
      await first.close();

      const again = await startServer(parseConfig(readFileSync(configFile, 'utf8'), configFile), { logger: createLogger('silent') });
      try {
        const run = async (id: string) =>
          ((await (await fetch(`${again.httpUrl}/api/v1/runs/${id}`, { headers: { authorization: `Bearer ${again.adminToken}` } })).json()) as { run: { result: string; finishedAt?: number; summary: Record<string, unknown> } }).run;
        expect(await run('left')).toMatchObject({ result: 'failed', finishedAt: expect.any(Number), summary: { server: 'rackseed', error: { code: 'RUN_ABANDONED' } } });
        expect(await run('theirs')).toMatchObject({ result: 'running' });
      } finally {
        await again.close();
      }
    } finally {
      rmSync(first.dir, { recursive: true, force: true });
    }
  });
});
