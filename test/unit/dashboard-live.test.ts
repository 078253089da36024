import { get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';
import { liveEvents } from '../../server/net/http/dashboard/live.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import type { ObservedStore } from '../../server/store/index.js';
import { workdirWithStore } from '../support/workdir.js';

const NODES = Array.from({ length: 6 }, (_, i) => `n${i + 1}`);
const INVENTORY = `cluster: { name: c }\ngroups:\n  g: {}\nnodes:\n${NODES.map((n, i) => `  - { name: ${n}, mac: "02:00:00:00:0e:0${i + 1}", group: g }`).join('\n')}\n`;

/**
 * Several open dashboards during a burst of events: every stream ends with a fleet summary that counts every event
 * it was sent, and the summary (a read of every node's status) is computed once for all of them, not per stream and
 * poll. The store is real (SQLite); its listNodes is counted.
 */
describe('dashboard live stream: one fleet summary for every open dashboard', () => {
  let dir: string;
  let store: ObservedStore;
  let server: Server;
  let base: string;
  let summaries: number;

  beforeEach(async () => {
    ({ dir, store } = await workdirWithStore('rackseed-live-', { 'inventory.yaml': INVENTORY }));
    summaries = 0;
    const listNodes = store.listNodes.bind(store);
    store.listNodes = async () => {
      summaries += 1;
      return listNodes();
    };
    const app = express();
    app.get('/events', liveEvents({ store, inventory: new InventoryService(join(dir, 'inventory.yaml'), createLogger('silent')), serverName: 't', log: createLogger('silent'), pollMs: 20, summaryMinMs: 400 }));
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('four streams, 24 events in bursts: each ends with a summary of all of them; the summary is computed a few times, not per stream and batch', async () => {
    const streams = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const res = await fetch(`${base}/events`);
        const reader = res.body!.getReader();
        const state = { text: '' };
        void (async () => {
          for (let r = await reader.read(); !r.done; r = await reader.read()) state.text += Buffer.from(r.value).toString();
        })().catch(() => undefined);
        return state;
      }),
    );
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    for (let burst = 0; burst < 4; burst++) {
      const event = burst === 0 ? ({ type: 'assigned', group: 'g' } as const) : burst === 1 ? ({ type: 'provision_started' } as const) : ({ type: 'stage', stage: `s${burst}` } as const);
      for (const node of NODES) expect((await store.recordEvent({ node, event })).ok).toBe(true);
      await new Promise((r) => setTimeout(r, 60));
    }
    const lastSummary = (text: string) => {
      const blocks = text.split('\n\n').filter((b) => b.startsWith('event: summary'));
      const data = blocks.at(-1)?.split('\n').find((l) => l.startsWith('data: '));
      return data ? (JSON.parse(data.slice(6)) as { nodes: number; byState: Record<string, number> }) : undefined;
    };
    const deadline = Date.now() + 10_000;
    while (!streams.every((s) => lastSummary(s.text)?.byState['provisioning'] === NODES.length) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const s of streams) {
      expect(s.text.split('event: node').length - 1).toBe(24);
      expect(lastSummary(s.text)).toMatchObject({ nodes: NODES.length, byState: { provisioning: NODES.length } });
    }
    // Before: one per stream and batch (16 here, hundreds at fleet scale). Now at most one per 400 ms whatever the
    // number of streams, plus the first (bounded by the time it took, so a slow host cannot fail this).
    expect(summaries).toBeLessThanOrEqual(Math.ceil((Date.now() - started) / 400) + 1);
  });

  it('a viewer who leaves while the stream is still finding its cursor leaves nothing polling the store', async () => {
    // A database round trip for every event query (the cursor search makes several, one after another).
    let queries = 0;
    const listEvents = store.listEvents.bind(store);
    store.listEvents = async (q) => {
      queries += 1;
      await new Promise((r) => setTimeout(r, 30));
      return listEvents(q);
    };
    for (let i = 0; i < 40; i++) await store.recordEvent({ node: NODES[i % NODES.length]!, event: { type: 'reimage_requested' } });
    await Promise.all(
      Array.from({ length: 10 }, () => {
        const req = httpGet(`${base}/events`);
        req.on('error', () => undefined);
        return new Promise((r) => setTimeout(() => r(req.destroy()), 5));
      }),
    );
    // Every cursor search ends, then nothing more: before, each left stream polled every 20 ms for ever, so the
    // count never stood still for half a second.
    let quiet = false;
    for (const deadline = Date.now() + 15_000; !quiet && Date.now() < deadline; ) {
      const before = queries;
      await new Promise((r) => setTimeout(r, 500));
      quiet = queries === before;
    }
    expect(quiet).toBe(true);
  });
});
