import { Server, type AnnounceParams, type Swarm } from 'bittorrent-tracker';
import { afterEach, describe, expect, it } from 'vitest';
import { handOutNeighbours, JOIN_MAX_BATCH, JOIN_QUIET_MS, type NeighbourSwarm } from '../../../server/images/tracker-neighbours.js';

const INFO_HASH = 'ef'.repeat(20);

/** A swarm of the real bittorrent-tracker package, announced to directly (what its HTTP route does after parsing). */
async function realSwarm(): Promise<{ server: Server; swarm: Swarm }> {
  const server = new Server({ http: false, udp: false, ws: false, stats: false });
  const swarm = await new Promise<Swarm>((resolve, reject) => server.createSwarm(INFO_HASH, (err, s) => (err || !s ? reject(err ?? new Error('no swarm')) : resolve(s))));
  return { server, swarm };
}

const started = (port: number): AnnounceParams => ({
  info_hash: INFO_HASH,
  peer_id: port.toString(16).padStart(40, '0'),
  ip: '10.9.0.1',
  port,
  numwant: 50,
  event: 'started',
  left: 1000,
  addr: `10.9.0.1:${port}`,
});

describe('handOutNeighbours: holding and placing batches', () => {
  let handle: NeighbourSwarm | undefined;
  let server: Server | undefined;
  afterEach(() => {
    handle?.close();
    server?.close();
  });

  it(`places a flood of ${JOIN_MAX_BATCH} starting nodes at once instead of holding them all, and answers them`, async () => {
    const real = await realSwarm();
    server = real.server;
    const placed: number[] = [];
    handle = handOutNeighbours(real.swarm, 3, (batch) => placed.push(batch.length));
    let answered = 0;
    for (let i = 0; i < JOIN_MAX_BATCH + 1; i++) real.swarm.announce(started(20_000 + i), () => answered++);
    // The full batch went out synchronously, before any timer could run; the one after it waits for its own batch.
    expect(placed).toEqual([JOIN_MAX_BATCH]);
    expect(answered).toBe(JOIN_MAX_BATCH);
    expect(handle.members()).toBe(JOIN_MAX_BATCH);
    await new Promise((resolve) => setTimeout(resolve, JOIN_QUIET_MS + 250));
    expect(placed).toEqual([JOIN_MAX_BATCH, 1]);
    expect(answered).toBe(JOIN_MAX_BATCH + 1);
  });

  it('answers the nodes it still holds when the tracker closes', async () => {
    const real = await realSwarm();
    server = real.server;
    handle = handOutNeighbours(real.swarm, 3);
    const peers: number[][] = [];
    for (const port of [7001, 7002, 7003]) real.swarm.announce(started(port), (_err, res) => peers.push(res!.peers.map((p) => p.port).sort()));
    expect(peers).toEqual([]);
    handle.close();
    expect(peers).toEqual([
      [7002, 7003],
      [7001, 7003],
      [7001, 7002],
    ]);
  });
});
