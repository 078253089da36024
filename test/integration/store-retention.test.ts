import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../server/config.js';
import { createLogger } from '../../server/log.js';
import { startServer } from '../../server/main.js';
import { startTestServer } from '../support/server.js';

const DAY = 86_400_000;
const MAC = '52:54:00:aa:bb:cc';

/** A logger whose lines can be awaited: the prune at start runs in the background, and logs when it is done. */
function awaitableLog(msg: string): { log: ReturnType<typeof createLogger>; line: Promise<Record<string, unknown>> } {
  let found!: (l: Record<string, unknown>) => void;
  const line = new Promise<Record<string, unknown>>((resolve) => (found = resolve));
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const l = JSON.parse(chunk.toString()) as Record<string, unknown>;
      if (l['msg'] === msg) found(l);
      done();
    },
  });
  return { log: createLogger('info', sink), line };
}

describe('store retention in the server', () => {
  it('prunes at start by the default store.retention: old runs but a node\'s newest, long-unseen discovered machines', async () => {
    const first = await startTestServer({ inventoryFixture: 'api/inventory.yaml' });
    const configFile = path.join(first.dir, 'rackseed.yaml');
    try {
      const old = Date.now() - 100 * DAY;
      // Seven old audits: the newest five (keep_last_runs_per_node's default) stay.
      for (let i = 0; i < 7; i++) {
        const id = `audit-${i}`;
        const startedAt = old + i * DAY;
        await first.store.createRun({ id, node: 'head01', kind: 'audit', result: 'running', startedAt, summary: {}, details: [] });
        await first.store.finishRun(id, { result: 'success', finishedAt: startedAt + 1, summary: {}, details: [] });
      }
      await first.store.createRun({ id: 'still-running', node: 'head01', kind: 'apply', result: 'running', startedAt: old, summary: { server: 'rs2' }, details: [] });
      await first.store.recordEvent({ node: MAC, event: { type: 'discovered', mac: MAC, facts: {} }, at: Date.now() - 31 * DAY });
      await first.close();

      const { log, line } = awaitableLog('pruned old runs and long-unseen discovered machines from the store');
      const again = await startServer(parseConfig(readFileSync(configFile, 'utf8'), configFile), { logger: log });
      try {
        expect(await line).toMatchObject({ subsystem: 'retention', runs: 2, discovered: 1, discoveredEvents: 1 });
        expect((await again.store.listRuns()).map((r) => r.id).sort()).toEqual(['audit-2', 'audit-3', 'audit-4', 'audit-5', 'audit-6', 'still-running']);
        expect(await again.store.getNode(MAC)).toBeUndefined();
        expect(await again.store.getNode('head01')).toBeDefined();
      } finally {
        await again.close();
      }
    } finally {
      rmSync(first.dir, { recursive: true, force: true });
    }
  });
});
