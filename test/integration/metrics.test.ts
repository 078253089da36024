import { readFileSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyDhcpStats } from '../../server/dhcp/stats.js';
import { countReadinessFailure, observeRun } from '../../server/metrics/runtime-metrics.js';
import { errorHandler, notFoundHandler } from '../../server/net/http/errors.js';
import { metricsRouter, metricsTokenPath } from '../../server/net/http/metrics-route.js';
import type { TftpStats } from '../../server/net/tftp.js';
import type { TrackerSwarm } from '../../server/images/tracker.js';
import type { SeederStatus } from '../../server/images/seeder.js';
import { startTestServer, type TestServer } from '../support/server.js';

let srv: TestServer;
let http: Server;
let url: string;
const dhcp = emptyDhcpStats();
const tftp: TftpStats = { requests: 0, transfersOk: 0, active: 0, bytesSent: 0, errors: { not_found: 0, traversal: 0, write_denied: 0, protocol: 0, aborted: 0, io: 0, busy: 0 }, foreignPackets: 0 };
const INFO_HASH = 'a'.repeat(40);
const tracker: TrackerSwarm[] = [
  {
    infoHash: INFO_HASH,
    seeders: 2,
    leechers: 3,
    peers: [
      { ip: '127.0.0.5', port: 6881, peerId: 'p1', uploaded: 1000, downloaded: 0, left: 0, complete: true, lastAnnounce: '' },
      { ip: '127.0.0.6', port: 6881, peerId: 'p2', uploaded: 500, downloaded: 10, left: 5, complete: false, lastAnnounce: '' },
    ],
  },
];
const seeder: SeederStatus = { running: true, restarts: 0, torrents: [{ name: 'debian12', infoHash: INFO_HASH, state: 'seeding', uploaded: 123456, uploadSpeed: 0, webSeedPieces: 12, firstRound: { pieces: 512, of: 2048 }, peers: [{ ip: '127.0.0.5', port: 1, uploaded: 9 }] }] } as SeederStatus;

beforeAll(async () => {
  srv = await startTestServer({ inventoryFixture: 'api/inventory.yaml', extraConfig: 'torrent:\n  enabled: false' });
  const app = express();
  app.use(
    metricsRouter({
      adminToken: srv.adminToken,
      dataDir: srv.config.dataDir,
      store: srv.store,
      netbootStats: () => ({ dhcp, tftp }),
      tftpEnabled: true,
      images: { list: () => [{ manifest: { name: 'debian12', torrent: { infoHash: INFO_HASH } } } as never] },
      swarm: { tracker: () => tracker, seeder: () => seeder, webseed: () => ({ throttledRequests: 7, fullSpeedRequests: 2, delayedBytes: 4096 }) },
    }),
  );
  app.use(notFoundHandler());
  app.use(errorHandler(srv.log));
  http = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/metrics`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
  await srv?.stop();
});

interface Exposition {
  types: Map<string, string>;
  /** `name{a="b",...}` (labels sorted) -> value */
  samples: Map<string, number>;
}

/** A small parser for the Prometheus text format: enough to check families, label sets and values. */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels = (m[2] ?? '')
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter(Boolean)
      .sort()
      .join(',');
    samples.set(labels ? `${m[1]}{${labels}}` : m[1]!, Number(m[3]));
  }
  return { types, samples };
}

const scrape = async (token: string | null) => fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('GET /metrics', () => {
  it('needs a token: the admin token or the metrics token (made with mode 0600)', async () => {
    const none = await scrape(null);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    expect((await scrape('x'.repeat(43))).status).toBe(401);
    expect((await scrape(srv.adminToken)).status).toBe(200);
    const file = metricsTokenPath(srv.config.dataDir);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const metricsToken = readFileSync(file, 'utf8').trim();
    expect(metricsToken).not.toBe(srv.adminToken);
    const res = await scrape(metricsToken);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('takes a rotated metrics token at once, but not one shorter than the start would accept', async () => {
    const file = metricsTokenPath(srv.config.dataDir);
    const original = readFileSync(file, 'utf8');
    try {
      const rotated = 'n'.repeat(40);
      writeFileSync(file, `${rotated}\n`);
      expect((await scrape(rotated)).status).toBe(200);
      expect((await scrape(original.trim())).status).toBe(401);
      writeFileSync(file, 'short\n');
      expect((await scrape('short')).status).toBe(401);
      expect((await scrape(srv.adminToken)).status).toBe(200);
    } finally {
      writeFileSync(file, original);
    }
  });

  it('a server without TFTP and without torrents exports neither family (no idle TFTP, no seeder_up 0 to alert on)', async () => {
    // The test server itself: tftp.enabled and torrent.enabled are false in its configuration.
    const res = await fetch(`${srv.httpUrl}/metrics`, { headers: { authorization: `Bearer ${srv.adminToken}` } });
    expect(res.status).toBe(200);
    const { types } = parseExposition(await res.text());
    const families = [...types.keys()].filter((n) => n.startsWith('rackseed_'));
    expect(families.filter((n) => /^rackseed_(tftp|swarm|webseed)_/.test(n))).toEqual([]);
    expect(families).toEqual(expect.arrayContaining(['rackseed_dhcp_packets_total', 'rackseed_nodes']));
  });

  it('has every family, with values read from live state at scrape time', async () => {
    Object.assign(dhcp, { received: 10, offers: 4, acks: 3, proxyOffers: 2, dropped: { truncated: 1 }, ignored: { not_pxe: 2 } });
    Object.assign(tftp, { requests: 7, transfersOk: 5, bytesSent: 4096, active: 1, errors: { ...tftp.errors, not_found: 2 } });
    observeRun('apply', 12.5, 'changed');
    observeRun('apply', 0.5, 'success');
    countReadinessFailure('gpu_count');
    countReadinessFailure('gpu_count');
    countReadinessFailure('ib_rate');
    expect((await srv.store.recordEvent({ node: 'gpu01', event: { type: 'reimage_requested' } })).ok).toBe(true);

    const { types, samples } = parseExposition(await (await scrape(srv.adminToken)).text());
    expect(Object.fromEntries([...types].filter(([n]) => n.startsWith('rackseed_')))).toEqual({
      rackseed_run_duration_seconds: 'histogram',
      rackseed_readiness_failures_total: 'counter',
      rackseed_power_actions_total: 'counter',
      rackseed_store_pruned_total: 'counter',
      rackseed_dhcp_packets_total: 'counter',
      rackseed_dhcp_dropped_total: 'counter',
      rackseed_dhcp_ignored_total: 'counter',
      rackseed_tftp_requests_total: 'counter',
      rackseed_tftp_transfers_total: 'counter',
      rackseed_tftp_sent_bytes_total: 'counter',
      rackseed_tftp_errors_total: 'counter',
      rackseed_tftp_foreign_packets_total: 'counter',
      rackseed_tftp_active_transfers: 'gauge',
      rackseed_swarm_peers: 'gauge',
      rackseed_swarm_peer_uploaded_bytes: 'gauge',
      rackseed_swarm_seeder_uploaded_bytes_total: 'counter',
      rackseed_swarm_seeder_peers: 'gauge',
      rackseed_swarm_seeder_up: 'gauge',
      rackseed_swarm_webseed_pieces: 'gauge',
      rackseed_swarm_first_round_ratio: 'gauge',
      rackseed_webseed_requests_total: 'counter',
      rackseed_webseed_delayed_bytes_total: 'counter',
      rackseed_nodes: 'gauge',
      rackseed_nodes_reimage_pending: 'gauge',
    });
    expect(types.get('process_cpu_user_seconds_total')).toBe('counter');

    const expected: Record<string, number> = {
      'rackseed_dhcp_packets_total{kind="received"}': 10,
      'rackseed_dhcp_packets_total{kind="offers"}': 4,
      'rackseed_dhcp_packets_total{kind="acks"}': 3,
      'rackseed_dhcp_packets_total{kind="proxyOffers"}': 2,
      'rackseed_dhcp_dropped_total{reason="truncated"}': 1,
      'rackseed_dhcp_ignored_total{reason="not_pxe"}': 2,
      rackseed_tftp_requests_total: 7,
      rackseed_tftp_transfers_total: 5,
      rackseed_tftp_sent_bytes_total: 4096,
      rackseed_tftp_active_transfers: 1,
      'rackseed_tftp_errors_total{reason="not_found"}': 2,
      'rackseed_swarm_peers{image="debian12",role="leecher"}': 3,
      'rackseed_swarm_peers{image="debian12",role="seeder"}': 2,
      'rackseed_swarm_peer_uploaded_bytes{image="debian12"}': 1500,
      'rackseed_swarm_seeder_uploaded_bytes_total{image="debian12"}': 123456,
      'rackseed_swarm_seeder_peers{image="debian12"}': 1,
      rackseed_swarm_seeder_up: 1,
      'rackseed_swarm_webseed_pieces{image="debian12"}': 12,
      'rackseed_swarm_first_round_ratio{image="debian12"}': 0.25,
      'rackseed_webseed_requests_total{mode="throttled"}': 7,
      'rackseed_webseed_requests_total{mode="full"}': 2,
      rackseed_webseed_delayed_bytes_total: 4096,
      'rackseed_nodes{state="assigned"}': 3,
      'rackseed_nodes{state="ready"}': 0,
      rackseed_nodes_reimage_pending: 1,
      'rackseed_readiness_failures_total{check="gpu_count"}': 2,
      'rackseed_readiness_failures_total{check="ib_rate"}': 1,
      'rackseed_run_duration_seconds_count{kind="apply",result="changed"}': 1,
      'rackseed_run_duration_seconds_sum{kind="apply",result="changed"}': 12.5,
      'rackseed_run_duration_seconds_bucket{kind="apply",le="15",result="changed"}': 1,
      'rackseed_run_duration_seconds_bucket{kind="apply",le="5",result="changed"}': 0,
      'rackseed_run_duration_seconds_count{kind="apply",result="success"}': 1,
    };
    for (const [key, value] of Object.entries(expected)) expect([key, samples.get(key)]).toEqual([key, value]);

    // A second scrape reads the stats again rather than adding them up twice.
    dhcp.offers = 6;
    const again = parseExposition(await (await scrape(srv.adminToken)).text()).samples;
    expect(again.get('rackseed_dhcp_packets_total{kind="offers"}')).toBe(6);
    expect(again.get('rackseed_tftp_requests_total')).toBe(7);
  });
});
