import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTracker, type Tracker, type TrackerOptions } from '../../../server/images/tracker.js';

/** A 20-byte binary string, as announce query strings carry info-hashes and peer ids. */
const binary = (hex: string) => [...Buffer.from(hex, 'hex')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
const INFO_HASH = 'ab'.repeat(20);

/** The ports in a bencoded announce response's compact `peers` string (6 bytes per peer: address, port). */
function compactPorts(body: Buffer): number[] {
  const key = body.indexOf('5:peers');
  if (key < 0) throw new Error(`no peers in ${body.toString('latin1')}`);
  const colon = body.indexOf(':', key + 7);
  const length = Number(body.subarray(key + 7, colon).toString());
  const ports: number[] = [];
  for (let at = colon + 1; at < colon + 1 + length; at += 6) ports.push(body.readUInt16BE(at + 4));
  return ports.sort((a, b) => a - b);
}

/** The announce URL of peer `peer` (hex peer id) for INFO_HASH, as aria2c sends it (compact, counters as given). */
const announceUrl = (base: string, peer: string, port: number, left: number, event?: string, numwant?: number) =>
  `${base}/announce?info_hash=${binary(INFO_HASH)}&peer_id=${binary(peer)}&port=${port}&uploaded=0&downloaded=0&left=${left}&compact=1${event ? `&event=${event}` : ''}${numwant ? `&numwant=${numwant}` : ''}`;

/** Announces and returns the ports of the IPv4 peers handed back (every test peer is on 127.0.0.1). */
async function announcedPorts(base: string, peer: string, port: number, left: number, event?: string, numwant?: number): Promise<number[]> {
  const res = await fetch(announceUrl(base, peer, port, left, event, numwant));
  expect(res.status).toBe(200);
  return compactPorts(Buffer.from(await res.arrayBuffer()));
}

/** Runs `run` against a tracker of INFO_HASH (20 s interval, `options` on top) on a loopback HTTP port, then closes both. */
async function withTrackerServer(options: Partial<TrackerOptions>, run: (tracker: Tracker, base: string) => Promise<void>): Promise<void> {
  const tracker = createTracker({ isKnown: (h) => h === INFO_HASH, intervalSeconds: 20, startupAnnounceSeconds: 10, numwant: 50, peerTtlSeconds: 300, log: pino({ level: 'silent' }), ...options });
  const app = express();
  app.use(tracker.routes);
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  try {
    await run(tracker, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    tracker.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('tracker: who hears of whom (the seeder of a joining node at once, no peer of itself)', () => {
  const joined: Array<[string, string, number]> = [];
  let tracker: Tracker;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    tracker = createTracker({
      isKnown: (h) => h === INFO_HASH,
      intervalSeconds: 20,
      startupAnnounceSeconds: 10,
      numwant: 50,
      peerTtlSeconds: 300,
      onLeecherJoined: (infoHash, ip, port) => joined.push([infoHash, ip, port]),
      log: pino({ level: 'silent' }),
    });
    const app = express();
    app.use(tracker.routes);
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    tracker.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const announce = (peer: string, port: number, left: number, event?: string, numwant?: number) => announcedPorts(base, peer, port, left, event, numwant);

  it('once per leecher, not again on its re-announces, never for a seeder or an unknown torrent', async () => {
    await announce('01'.repeat(20), 6881, 1000, 'started');
    await announce('01'.repeat(20), 6881, 500);
    await announce('02'.repeat(20), 6882, 0, 'started');
    expect(joined).toEqual([[INFO_HASH, '127.0.0.1', 6881]]);
    // A refused announce (unknown torrent) neither wakes the seeder nor is remembered, started or not.
    for (const event of ['', '&event=started', '&event=completed']) {
      const unknown = await fetch(`${base}/announce?info_hash=${binary('cd'.repeat(20))}&peer_id=${binary('03'.repeat(20))}&port=6883&left=1&compact=1${event}`);
      expect((await unknown.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
    expect(joined).toHaveLength(1);
    expect(tracker.swarms().map((s) => s.infoHash)).toEqual([INFO_HASH]);
    // The view shows what was announced; the tracker's own bookkeeping stays inside.
    expect(Object.keys(tracker.swarms()[0]!.peers[0]!).sort()).toEqual(['complete', 'downloaded', 'ip', 'lastAnnounce', 'left', 'peerId', 'port', 'uploaded']);
  });

  it('again after the node left and came back (a reinstall)', async () => {
    await announce('01'.repeat(20), 6881, 1000, 'stopped');
    await announce('01'.repeat(20), 6881, 1000, 'started');
    expect(joined).toHaveLength(2);
  });

  it('never hands a peer its own address, even when it asks for a single peer', async () => {
    await announce('11'.repeat(20), 7001, 1000, 'started');
    await announce('12'.repeat(20), 7002, 1000, 'started');
    await announce('13'.repeat(20), 7003, 0, 'started');
    const others = [6881, 6882, 7001, 7002, 7003];
    expect(await announce('11'.repeat(20), 7001, 900)).toEqual(others.filter((p) => p !== 7001));
    expect(await announce('13'.repeat(20), 7003, 0)).toEqual(others.filter((p) => p !== 7003));
    for (let i = 0; i < 10; i++) {
      const one = await announce('12'.repeat(20), 7002, 800, undefined, 1);
      expect(one).toHaveLength(1);
      expect(one).not.toContain(7002);
    }
  });
  it('a garbled or missing left is unknown, not complete: the view agrees with the tracker counts', async () => {
    for (const [peer, port, left] of [['21', 7101, 'abc'], ['22', 7102, '-5'], ['23', 7103, undefined]] as const) {
      const q = `info_hash=${binary(INFO_HASH)}&peer_id=${binary(peer.repeat(20))}&port=${port}&uploaded=0&downloaded=0${left === undefined ? '' : `&left=${left}`}&compact=1`;
      expect((await fetch(`${base}/announce?${q}`)).status).toBe(200);
    }
    const swarm = tracker.swarms().find((s) => s.infoHash === INFO_HASH)!;
    for (const port of [7101, 7102, 7103]) expect(swarm.peers.find((p) => p.port === port)).toMatchObject({ left: -1, complete: false });
    // The tracker's own counts (what it answers in complete/incomplete) and the view's agree.
    const scrape = Buffer.from(await (await fetch(`${base}/announce?info_hash=${binary(INFO_HASH)}&peer_id=${binary('24'.repeat(20))}&port=7104&left=1&compact=1`)).arrayBuffer()).toString('latin1');
    const count = (key: string) => Number(new RegExp(`${key}i(\\d+)e`).exec(scrape)?.[1]);
    const view = tracker.swarms().find((s) => s.infoHash === INFO_HASH)!;
    expect([view.seeders, view.leechers]).toEqual([count('8:complete'), count('10:incomplete')]);
    expect(joined.map(([, , port]) => port)).toEqual(expect.arrayContaining([7101, 7102, 7103]));
  });

});

describe('tracker: a starting leecher is asked to announce every second', () => {
  /** The `interval` a bencoded announce response carries. */
  const intervalOf = (body: string) => Number(/8:intervali(\d+)e/.exec(body)?.[1]);

  const withTracker = (startupAnnounceSeconds: number, run: (announce: (peer: string, port: number, left: number, event?: string) => Promise<number>) => Promise<void>) =>
    withTrackerServer({ startupAnnounceSeconds }, (_tracker, base) =>
      run(async (peer, port, left, event) => {
        const res = await fetch(announceUrl(base, peer, port, left, event));
        return intervalOf(Buffer.from(await res.arrayBuffer()).toString('latin1'));
      }),
    );

  it('for the first seconds after its started announce, then at the configured interval; a seeder never', async () => {
    await withTracker(1, async (announce) => {
      expect(await announce('31'.repeat(20), 7201, 1000, 'started')).toBe(1);
      expect(await announce('31'.repeat(20), 7201, 900)).toBe(1);
      expect(await announce('32'.repeat(20), 7202, 0, 'started')).toBe(20);
      // A leecher the tracker has never heard start (the server restarted under it) is treated as starting too.
      expect(await announce('33'.repeat(20), 7203, 1000)).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      expect(await announce('31'.repeat(20), 7201, 800)).toBe(20);
      expect(await announce('33'.repeat(20), 7203, 800)).toBe(20);
      // A restarted download (stopped, then started again) starts a new window.
      expect(await announce('31'.repeat(20), 7201, 800, 'stopped')).toBe(20);
      expect(await announce('31'.repeat(20), 7201, 800, 'started')).toBe(1);
      // A started announce from a peer still in the swarm (aria2c killed, its entry not expired) starts one as well.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      expect(await announce('31'.repeat(20), 7201, 700, 'started')).toBe(1);
    });
  });

  it('never when it is turned off (0)', async () => {
    await withTracker(0, async (announce) => {
      expect(await announce('41'.repeat(20), 7301, 1000, 'started')).toBe(20);
      expect(await announce('41'.repeat(20), 7301, 900)).toBe(20);
    });
  });
});

describe('tracker: a few neighbours per downloading node', () => {
  const SEED = 6881;
  const nodePorts = Array.from({ length: 8 }, (_, i) => 7401 + i);
  const peerId = (port: number) => port.toString(16).padStart(40, '0');

  /** Ports handed to the peer on `port`. */
  const announcer = (base: string) => (port: number, left: number, event?: string) => announcedPorts(base, peerId(port), port, left, event);

  it('nodes that start together each hear of 3 of them and of the seed; the seed hears of everyone; a node that left is replaced', async () => {
    await withTrackerServer({ neighbours: 3 }, async (tracker, base) => {
      const announce = announcer(base);
      expect(await announce(SEED, 0, 'started')).toEqual([]);
      // All at once, as a rack powered on together: the answers are held until the batch is placed, so the first
      // node too hears of its neighbours (answered at once, it would have heard of nobody).
      const answers = await Promise.all(nodePorts.map((port) => announce(port, 1000, 'started')));
      const neighbours = new Map(nodePorts.map((port, i) => [port, answers[i]!.filter((p) => p !== SEED)]));
      for (const [port, ports] of neighbours) {
        expect(answers[nodePorts.indexOf(port)]).toContain(SEED);
        expect(ports).toHaveLength(3);
        expect(ports).not.toContain(port);
        // Whoever a node is told about is told about it: each connection is made once and both ends expect it.
        for (const other of ports) expect(neighbours.get(other)).toContain(port);
      }
      expect(await announce(SEED, 0)).toEqual(nodePorts);
      // The swarm view shows who neighbours whom (an operator asking why one node is slow); a seed has no neighbours.
      const view = tracker.swarms()[0]!.peers;
      expect(view.find((p) => p.port === SEED)!.neighbours).toBeUndefined();
      for (const [port, ports] of neighbours) expect(view.find((p) => p.port === port)!.neighbours).toEqual(ports.map((n) => `127.0.0.1:${n}`).sort());
      // Re-announces hand out the same neighbours.
      expect((await announce(nodePorts[0]!, 900)).filter((p) => p !== SEED)).toEqual(neighbours.get(nodePorts[0]!));

      const leaver = nodePorts[0]!;
      await announce(leaver, 900, 'stopped');
      const orphans = neighbours.get(leaver)!;
      const after = await Promise.all(orphans.map((port) => announce(port, 800)));
      for (const ports of after) {
        expect(ports).not.toContain(leaver);
        expect(ports.filter((p) => p !== SEED).length).toBeGreaterThanOrEqual(2);
      }
      // Two of the three lost a neighbour and had room for each other.
      expect(after.map((ports) => ports.filter((p) => p !== SEED).length).sort()).toEqual([2, 3, 3]);
    });
  });

  it('the seeder is sent to a starting node when its announce arrives, not when the held answer goes out, and once', async () => {
    const joined: number[] = [];
    await withTrackerServer({ neighbours: 3, onLeecherJoined: (_infoHash, _ip, port) => joined.push(port) }, async (_tracker, base) => {
      const announce = announcer(base);
      let answered = false;
      const first = announce(nodePorts[0]!, 1000, 'started').then((ports) => {
        answered = true;
        return ports;
      });
      const waitUntil = Date.now() + 5000;
      while (joined.length === 0 && Date.now() < waitUntil) await new Promise((r) => setTimeout(r, 5));
      // The answer waits for the rest of the wave (450 ms of quiet at least); the seeder did not.
      expect(joined).toEqual([nodePorts[0]]);
      expect(answered).toBe(false);
      // aria2c announces again before its first answer came: still one connection from the seeder.
      const again = announce(nodePorts[0]!, 1000);
      await Promise.all([first, again]);
      await announce(nodePorts[0]!, 900);
      expect(joined).toEqual([nodePorts[0]]);
      // Reinstalled: it left and starts again, and the seeder is sent again.
      await announce(nodePorts[0]!, 900, 'stopped');
      await announce(nodePorts[0]!, 1000, 'started');
      expect(joined).toEqual([nodePorts[0], nodePorts[0]]);
    });
  });

  it('a node that completed stays a neighbour (it keeps seeding to them), and one seen only as complete is a seed for all', async () => {
    await withTrackerServer({ neighbours: 3 }, async (_tracker, base) => {
      const announce = announcer(base);
      const answers = await Promise.all(nodePorts.slice(0, 4).map((port) => announce(port, 1000, 'started')));
      const before = answers[0]!;
      expect(await announce(nodePorts[0]!, 0, 'completed')).toEqual(before);
      expect(await announce(nodePorts[1]!, 500)).toContain(nodePorts[0]);
      // A second seed box: everyone hears of it, it hears of everyone.
      expect(await announce(6999, 0, 'started')).toEqual(nodePorts.slice(0, 4));
      expect(await announce(nodePorts[2]!, 500)).toContain(6999);
    });
  });

  it('nodes the swarm dropped (silent past the peer TTL) are neither handed out nor spliced into', async () => {
    await withTrackerServer({ neighbours: 3, peerTtlSeconds: 1 }, async (tracker, base) => {
      const announce = announcer(base);
      const [gone, fresh] = [nodePorts.slice(0, 4), nodePorts.slice(4)];
      await Promise.all(gone.map((port) => announce(port, 1000, 'started')));
      expect(tracker.graphMembers()).toBe(4);
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const answers = await Promise.all(fresh.map((port) => announce(port, 1000, 'started')));
      for (const [i, ports] of answers.entries()) {
        expect(ports).toHaveLength(3);
        expect(ports.every((p) => fresh.includes(p) && p !== fresh[i])).toBe(true);
      }
      // The graph forgot them too: it does not grow with every install a long-running server has seen.
      expect(tracker.graphMembers()).toBe(4);
    });
  });

  it('without neighbours (0), every peer up to numwant, as before', async () => {
    await withTrackerServer({ neighbours: 0 }, async (tracker, base) => {
      const announce = announcer(base);
      await Promise.all(nodePorts.map((port) => announce(port, 1000, 'started')));
      expect(await announce(nodePorts[0]!, 900)).toEqual(nodePorts.slice(1));
      expect(tracker.graphMembers()).toBe(0);
    });
  });
});

describe('tracker: memory', () => {
  it('forgets the counters of peers the package has dropped, without anyone reading the swarm view (nodes never announce stopped)', async () => {
    await withTrackerServer({}, async (tracker, base) => {
      // 2,000 peers come and go; the package keeps the 1,000 most recent of a swarm.
      for (let i = 0; i < 2_000; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, async (_, j) => {
            const port = 10_000 + i + j;
            const res = await fetch(announceUrl(base, port.toString(16).padStart(40, '0'), port, 100, 'started'));
            await res.arrayBuffer();
          }),
        );
      }
      // Before: all 2,000 were held until something called swarms().
      expect(tracker.heardPeers()).toBeLessThanOrEqual(1_000);
      expect(tracker.swarms()[0]!.peers.length).toBe(1_000);
    });
  });
});
