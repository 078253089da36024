import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Netns } from '../support/netns.js';
import { startRackseedProcess, type RackseedProcess } from '../support/rackseed-process.js';
import { buildSwarmLan, sha256File, startNodeDownload, writeTestImage, type NodeDownload, type SwarmLan, type TestImage } from '../support/swarm.js';
import { waitFor } from '../support/wait.js';

/**
 * Real peers: rackseed (tracker + seeder + web seed) in its own namespace and 8 node namespaces on one bridge, every
 * link shaped to 100 Mbit/s so a download lasts long enough to see peers trade and to break things mid-transfer.
 * The nodes run the installer's aria2c command (test/support/swarm.ts). Each test uses its own image, so each is a
 * fresh swarm.
 */
const URL = 'http://10.0.0.1:8080';
const SIZE = 64 * 1024 * 1024;
const NODES = 8;
const MBIT = 100;

interface SwarmView {
  seeder: { running: boolean; pid?: number; restarts: number };
  images: Array<{
    name: string;
    peers: Array<{ ip: string; port: number; uploaded: number; downloaded: number; left: number; complete: boolean }>;
    seeder: { state: string; uploaded: number; firstRound?: { pieces: number; of: number }; peers: Array<{ ip: string }> } | null;
  }>;
}

let work: string;
let netns: Netns;
let lan: SwarmLan;
let rs: RackseedProcess;
let running: NodeDownload[] = [];

const swarmOf = (name: string) => rs.api<SwarmView>('/swarm').images.find((i) => i.name === name);

/** A new image in the server's catalog, with the server's seeder seeding it. */
async function publish(name: string): Promise<TestImage> {
  const image = await writeTestImage(path.join(rs.dir, 'data'), { name, size: SIZE, publicUrl: URL });
  rs.post('/images/rescan');
  await waitFor(`the seeder seeding ${name}`, () => swarmOf(name)?.seeder?.state === 'seeding', 30_000, 200);
  return image;
}

function download(nodeIndex: number, image: TestImage, tag = ''): NodeDownload {
  const node = lan.nodes[nodeIndex]!;
  const d = startNodeDownload(netns, node.ns, image, path.join(work, `${image.name}-${nodeIndex}${tag}`));
  running.push(d);
  return d;
}

async function allDone(downloads: NodeDownload[], timeoutMs = 60_000): Promise<void> {
  await waitFor(
    'every node to finish',
    () => {
      const dead = downloads.find((d) => d.child.exitCode !== null && !d.done());
      if (dead) throw new Error(`aria2c in ${dead.dir} exited with ${dead.child.exitCode}: ${dead.output()}`);
      return downloads.every((d) => d.done());
    },
    timeoutMs,
    200,
  );
}

async function expectVerified(downloads: NodeDownload[], image: TestImage): Promise<void> {
  for (const d of downloads) expect(await sha256File(d.file), d.dir).toBe(image.sha256);
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-swarm-'));
  netns = new Netns();
  lan = buildSwarmLan(netns, { nodes: NODES, mbit: MBIT });
  // The seeder stays down once killed (fault b), so the nodes provably finish without it. A 5 s announce interval
  // (aria2c obeys the tracker's) lets the tracker's view catch up within a test.
  rs = await startRackseedProcess({
    netns,
    ns: lan.server.ns,
    httpAddress: lan.server.ip,
    config: 'tftp:\n  enabled: false\ntorrent:\n  announce_interval_seconds: 5\n  peer_ttl_seconds: 30\n  seeder_restart_seconds: 3600\n',
    inventory: 'cluster:\n  name: t\n',
    logLevel: 'info',
  });
});

afterEach(async () => {
  await Promise.all(running.map((d) => netns.stop(d.child)));
  running = [];
});

afterAll(async () => {
  await rs?.stop();
  netns?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('images over BitTorrent with real aria2c peers', () => {
  it('8 nodes all end with the verified image, and nodes upload to each other', async () => {
    const image = await publish('swarm-a');
    const downloads = lan.nodes.map((_, i) => download(i, image));
    // Everyone the seeder is connected to while the nodes download: only nodes, never the seeder itself.
    const seederPeers = new Set<string>();
    const sample = setInterval(() => swarmOf('swarm-a')?.seeder?.peers.forEach((p) => seederPeers.add(p.ip)), 250);
    try {
      await allDone(downloads);
    } finally {
      clearInterval(sample);
    }
    await expectVerified(downloads, image);
    expect(seederPeers.size).toBeGreaterThan(0);
    expect([...seederPeers].filter((ip) => !lan.nodes.some((n) => n.ip === ip))).toEqual([]);
    // Super-seeding's first round is over: every piece has left the server at least once.
    const round = swarmOf('swarm-a')!.seeder!.firstRound!;
    expect(round.pieces).toBe(round.of);
    expect(round.of).toBeGreaterThan(0);
    // aria2c reports its counters on its "completed" announce: the tracker saw node-to-node transfers.
    // Wait for all of them: the announces arrive one by one, in no particular order.
    const nodePeers = await waitFor('every node\'s "completed" announce', () => {
      const peers = swarmOf('swarm-a')?.peers.filter((p) => p.ip !== lan.server.ip && p.complete) ?? [];
      return peers.length === NODES ? peers : undefined;
    }, 30_000, 500);
    expect(nodePeers.some((p) => p.uploaded > 0)).toBe(true);
    const seeder = swarmOf('swarm-a')!.seeder!;
    // Each node keeps seeding after completion, so the server sent less than one copy per node.
    expect(seeder.uploaded).toBeLessThan(NODES * SIZE);
  });

  it('a peer serving corrupt pieces does not stop honest nodes from getting the right image', async () => {
    const image = await publish('swarm-b');
    // The liar: a complete-looking but corrupted copy, seeded without verification.
    const liar = lan.addHost('x', '10.0.0.99');
    const liarDir = path.join(work, 'liar');
    mkdirSync(liarDir);
    const bad = path.join(liarDir, 'rootfs.tar.zst');
    copyFileSync(path.join(image.dir, 'rootfs.tar.zst'), bad);
    const fd = openSync(bad, 'r+');
    // Every 64 KiB: every piece is corrupt whatever the piece size (the smallest is 64 KiB).
    for (let off = 1000; off < SIZE; off += 64 * 1024) writeSync(fd, Buffer.from('corrupt!'), 0, 8, off);
    closeSync(fd);
    // Without check-integrity and with bt-seed-unverified, aria2c takes the file as complete and serves it.
    const l = startNodeDownload(netns, liar.ns, image, liarDir, ['--check-integrity=false', '--bt-seed-unverified=true']);
    running.push(l);
    await waitFor('the liar to join as a seeder', () => swarmOf('swarm-b')?.peers.some((p) => p.ip === liar.ip && p.complete), 30_000, 200);
    const downloads = lan.nodes.slice(0, 4).map((_, i) => download(i, image));
    await allDone(downloads, 90_000);
    await expectVerified(downloads, image);
    // The liar really served its bad pieces (they failed the nodes' piece hashes and were fetched again elsewhere).
    await waitFor('the liar to report uploads', () => swarmOf('swarm-b')?.peers.some((p) => p.ip === liar.ip && p.uploaded > 0), 15_000, 250);
  });

  it('a node whose aria2c is killed mid-download resumes after a restart and verifies', async () => {
    const image = await publish('swarm-d');
    const downloads = lan.nodes.slice(0, 4).map((_, i) => download(i, image));
    const victim = downloads[0]!;
    await waitFor('the victim to hold some pieces', () => existsSync(victim.file) && statSync(victim.file).blocks * 512 > 8 * 1024 * 1024, 30_000, 50);
    expect(victim.done()).toBe(false);
    await netns.stop(victim.child, 'SIGKILL');
    const again = download(0, image);
    expect(again.dir).toBe(victim.dir);
    await allDone([again, ...downloads.slice(1)]);
    await expectVerified([again, ...downloads.slice(1)], image);
  });

  it('with the seeder killed mid-transfer, nodes finish from each other and the web seed', async () => {
    const image = await publish('swarm-c');
    const downloads = lan.nodes.slice(0, 4).map((_, i) => download(i, image));
    await waitFor('transfer under way', () => (swarmOf('swarm-c')?.seeder?.uploaded ?? 0) > 8 * 1024 * 1024, 30_000, 100);
    const pid = rs.api<SwarmView>('/swarm').seeder.pid!;
    netns.track(pid);
    netns.kill(pid, 'SIGKILL');
    await waitFor('the server to notice', () => !rs.api<SwarmView>('/swarm').seeder.running, 5000, 100);
    expect(downloads.some((d) => d.done())).toBe(false);
    await allDone(downloads, 90_000);
    await expectVerified(downloads, image);
    expect(rs.api<SwarmView>('/swarm').seeder).toMatchObject({ running: false, restarts: 1 });
  });
});
