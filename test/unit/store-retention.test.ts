import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { StoreRetentionConfig } from '../../server/config.js';
import { createLogger } from '../../server/log.js';
import { runtimeRegistry } from '../../server/metrics/runtime-metrics.js';
import { prunePolicyFor, StoreRetention } from '../../server/services/store-retention.js';
import { openStore } from '../../server/store/index.js';
import type { ObservedStore, PrunePolicy, PruneResult } from '../../server/store/types.js';

const DAY = 86_400_000;
const NOW = 1_000 * DAY;

describe('prunePolicyFor', () => {
  const cases: Array<[string, StoreRetentionConfig, PrunePolicy]> = [
    ['the defaults', { runsDays: 90, keepLastRunsPerNode: 5, discoveredDays: 30 }, { runsStartedBefore: NOW - 90 * DAY, keepLastRunsPerNode: 5, discoveredSeenBefore: NOW - 30 * DAY }],
    ['runs kept for ever', { runsDays: 0, keepLastRunsPerNode: 5, discoveredDays: 30 }, { keepLastRunsPerNode: 5, discoveredSeenBefore: NOW - 30 * DAY }],
    ['discovered machines kept for ever', { runsDays: 7, keepLastRunsPerNode: 1, discoveredDays: 0 }, { runsStartedBefore: NOW - 7 * DAY, keepLastRunsPerNode: 1 }],
    ['nothing pruned', { runsDays: 0, keepLastRunsPerNode: 3, discoveredDays: 0 }, { keepLastRunsPerNode: 3 }],
  ];
  it.each(cases)('%s', (_name, retention, policy) => {
    expect(prunePolicyFor(retention, NOW)).toEqual(policy);
  });
});

function capture(): { log: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger('info', sink), lines };
}

async function prunedTotal(what: string): Promise<number> {
  const metric = await runtimeRegistry.getSingleMetric('rackseed_store_pruned_total')!.get();
  return metric.values.find((v) => v.labels['what'] === what)?.value ?? 0;
}

describe('StoreRetention', () => {
  let dir: string;
  let store: ObservedStore;
  const retention: StoreRetentionConfig = { runsDays: 90, keepLastRunsPerNode: 1, discoveredDays: 30 };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseed-retention-'));
    store = await openStore({ kind: 'sqlite', path: join(dir, 'rackseed.db') });
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('prunes at start by store.retention, logs what it removed and counts it', async () => {
    for (const [id, startedAt] of [['old', NOW - 100 * DAY], ['newest', NOW - 95 * DAY], ['recent', NOW - DAY]] as const) {
      await store.createRun({ id, node: id === 'recent' ? 'n2' : 'n1', kind: 'audit', result: 'running', startedAt, summary: {}, details: [] });
      await store.finishRun(id, { result: 'success', finishedAt: startedAt + 1, summary: {}, details: [] });
    }
    await store.recordEvent({ node: '52:54:00:00:00:01', event: { type: 'discovered', mac: '52:54:00:00:00:01', facts: {} }, at: NOW - 31 * DAY });
    await store.recordEvent({ node: '52:54:00:00:00:02', event: { type: 'discovered', mac: '52:54:00:00:00:02', facts: {} }, at: NOW - 29 * DAY });
    const before = { runs: await prunedTotal('runs'), machines: await prunedTotal('discovered_machines') };
    const { log, lines } = capture();
    const r = new StoreRetention({ store, retention, log, now: () => NOW });
    r.start();
    // Joins the pass start() began.
    expect(await r.pruneNow()).toEqual({ runs: 1, discovered: 1, discoveredEvents: 1 });
    await r.stop();

    expect((await store.listRuns()).map((x) => x.id).sort()).toEqual(['newest', 'recent']);
    expect((await store.listNodes()).map((n) => n.id)).toEqual(['52:54:00:00:00:02']);
    expect(lines.filter((l) => l['msg'] === 'pruned old runs and long-unseen discovered machines from the store')).toEqual([
      expect.objectContaining({ runs: 1, discovered: 1, discoveredEvents: 1 }),
    ]);
    expect(await prunedTotal('runs')).toBe(before.runs + 1);
    expect(await prunedTotal('discovered_machines')).toBe(before.machines + 1);
  });

  it('a store that fails to prune is logged, and the next pass tries again', async () => {
    let calls = 0;
    const failing = { prune: async () => { calls += 1; throw new Error('disk I/O error'); } } as unknown as ObservedStore;
    const { log, lines } = capture();
    const r = new StoreRetention({ store: failing, retention, log, now: () => NOW });
    expect(await r.pruneNow()).toBeUndefined();
    expect(await r.pruneNow()).toBeUndefined();
    expect(calls).toBe(2);
    expect(lines.filter((l) => l['level'] === 40).map((l) => l['msg'])).toEqual([
      'could not prune the store; trying again at the next interval',
      'could not prune the store; trying again at the next interval',
    ]);
    await r.stop();
  });

  it('stop() stops a pass under way between batches and waits for it; none starts after', async () => {
    let seen: PrunePolicy | undefined;
    let release!: () => void;
    const slow = {
      prune: (policy: PrunePolicy) => {
        seen = policy;
        return new Promise<PruneResult>((resolve) => {
          release = () => resolve({ runs: 0, discovered: 0, discoveredEvents: 0 });
        });
      },
    } as unknown as ObservedStore;
    const r = new StoreRetention({ store: slow, retention, log: createLogger('silent'), now: () => NOW });
    r.start();
    let stopped = false;
    const stopping = r.stop().then(() => (stopped = true));
    expect(seen?.signal?.aborted).toBe(true);
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(await r.pruneNow()).toBeUndefined();
  });

  it('does nothing when both retentions are 0 (kept for ever)', async () => {
    let calls = 0;
    const counting = { prune: async () => { calls += 1; return { runs: 0, discovered: 0, discoveredEvents: 0 }; } } as unknown as ObservedStore;
    const r = new StoreRetention({ store: counting, retention: { runsDays: 0, keepLastRunsPerNode: 5, discoveredDays: 0 }, log: createLogger('silent') });
    r.start();
    await r.stop();
    expect(calls).toBe(0);
  });
});
