import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns } from '../support/netns.js';
import { processAlive } from '../support/process-output.js';
import { startRackseedProcess, type RackseedProcess } from '../support/rackseed-process.js';
import { buildSwarmLan, sha256File, startNodeDownload, writeTestImage, type SwarmLan, type TestImage } from '../support/swarm.js';
import { waitFor } from '../support/wait.js';

/**
 * How the seeder recovers. An image that failed to verify is tried again on every catalog change (its file may have
 * been repaired). A hung seeder (a stopped event loop: it keeps its port, so nodes' connections to it hang, and it never exits) is
 * seen, reported and replaced: the server kills it after torrent.seeder_hung_seconds without stats and starts a new
 * one. The bytes the old process uploaded stay counted (a Prometheus counter must not drop while the server runs).
 */
const URL = 'http://10.0.0.1:8080';
const SIZE = 8 * 1024 * 1024;

interface SwarmView {
  seeder: { running: boolean; stale?: boolean; pid?: number; restarts: number };
  images: Array<{ name: string; seeder: { state: string; uploaded: number } | null }>;
}

let work: string;
let netns: Netns;
let lan: SwarmLan;
let rs: RackseedProcess;
let image: TestImage;

const swarm = () => rs.api<SwarmView>('/swarm');
const uploaded = () => swarm().images.find((i) => i.name === 'wd')?.seeder?.uploaded ?? 0;
const rescan = (): void => void rs.post('/images/rescan');
const seederState = (name: string) => swarm().images.find((i) => i.name === name)?.seeder?.state;
/** Writes one byte at `at`, returning the byte that was there. */
function poke(file: string, at: number, byte: number): number {
  const fd = openSync(file, 'r+');
  try {
    const old = Buffer.alloc(1);
    readSync(fd, old, 0, 1, at);
    writeSync(fd, Buffer.from([byte]), 0, 1, at);
    return old[0]!;
  } finally {
    closeSync(fd);
  }
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-seeder-wd-'));
  netns = new Netns();
  lan = buildSwarmLan(netns, { nodes: 1 });
  rs = await startRackseedProcess({
    netns,
    ns: lan.server.ns,
    httpAddress: lan.server.ip,
    config: 'tftp:\n  enabled: false\ntorrent:\n  seeder_hung_seconds: 8\n  seeder_restart_seconds: 1\n',
    inventory: 'cluster:\n  name: t\n',
    logLevel: 'info',
  });
  image = await writeTestImage(path.join(rs.dir, 'data'), { name: 'wd', size: SIZE, publicUrl: URL });
  rescan();
  await waitFor('the seeder to seed wd', () => swarm().images.find((i) => i.name === 'wd')?.seeder?.state === 'seeding', 60_000, 200);
}, 120_000);

afterAll(async () => {
  await rs?.stop();
  netns?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('seeder recovery', () => {
  it('an image that failed to verify is seeded after its file is repaired and the catalog rescanned', async () => {
    const fix = await writeTestImage(path.join(rs.dir, 'data'), { name: 'fix', size: 2 * 1024 * 1024, publicUrl: URL });
    const file = path.join(fix.dir, 'rootfs.tar.zst');
    const original = poke(file, 1_000_000, 0);
    if (original === 0) poke(file, 1_000_000, 1);
    rescan();
    await waitFor('the corrupt image to fail', () => seederState('fix') === 'failed', 60_000, 200);
    poke(file, 1_000_000, original);
    rescan();
    await waitFor('the repaired image to be seeded', () => seederState('fix') === 'seeding', 60_000, 200);
    expect(seederState('wd')).toBe('seeding');
  }, 120_000);

  it('a stopped seeder is reported stale, killed after seeder_hung_seconds, restarted, and its uploaded bytes stay counted', async () => {
    // A node takes the image (the web seed is paced while the seeder seeds, so the seeder sends most of it).
    const node = startNodeDownload(netns, lan.nodes[0]!.ns, image, path.join(work, 'node'));
    try {
      await waitFor('the node to hold the image', () => node.done(), 60_000, 200);
    } finally {
      await netns.stop(node.child);
    }
    expect(await sha256File(node.file)).toBe(image.sha256);
    const before = uploaded();
    expect(before).toBeGreaterThan(0);

    const old = swarm().seeder;
    expect(old).toMatchObject({ running: true, restarts: 0 });
    const pid = old.pid!;
    netns.track(pid);
    netns.kill(pid, 'SIGSTOP');
    // Silent for more than a few seconds: no longer reported as running (the metric and the API say so).
    await waitFor('the stopped seeder to be reported stale', () => swarm().seeder.stale === true, 15_000, 200);
    expect(swarm().seeder.running).toBe(false);
    // Killed by the watchdog (not by us: it is still stopped), then a new process seeds the image again.
    await waitFor('a new seeder process', () => {
      const s = swarm().seeder;
      return s.pid !== undefined && s.pid !== pid && s.running;
    }, 30_000, 200);
    await waitFor('the old process to be gone', () => !processAlive(pid), 10_000, 100);
    netns.untrack(pid);
    await waitFor('the new seeder to seed wd', () => swarm().images.find((i) => i.name === 'wd')?.seeder?.state === 'seeding', 60_000, 200);
    expect(swarm().seeder.restarts).toBe(1);
    expect(rs.log()).toMatch(/seeder hung \(no stats\): killing it/);
    expect(uploaded()).toBeGreaterThanOrEqual(before);
  }, 180_000);
});
