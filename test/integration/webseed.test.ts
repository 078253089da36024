import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns } from '../support/netns.js';
import { startRackseedProcess, type RackseedProcess } from '../support/rackseed-process.js';
import { buildSwarmLan, sha256File, startNodeDownload, writeTestImage, type NodeDownload, type SwarmLan } from '../support/swarm.js';
import { waitFor } from '../support/wait.js';

/**
 * The web seed as the swarm's fallback, not the seeder's competitor: one node (the installer's aria2c, no other
 * peer) downloads an image from rackseed, whose web seed is throttled while its seeder seeds that image. With the
 * seeder killed mid-transfer the web seed must go to full speed, and the node must finish from it alone. The server
 * logs every switch of an image's web seed; aria2c's debug log shows the header rackseed put on each web-seed
 * response.
 */
const URL = 'http://10.0.0.1:8080';
const SIZE = 32 * 1024 * 1024;
/** 10 Mbit/s: the download lasts ~27 s, long enough to kill the seeder in the middle of it. */
const MBIT = 10;

interface SwarmView {
  seeder: { running: boolean; pid?: number; restarts: number };
  images: Array<{ name: string; seeder: { state: string; uploaded: number; webSeedPieces: number } | null }>;
}

let work: string;
let netns: Netns;
let lan: SwarmLan;
let rs: RackseedProcess;
let node: NodeDownload | undefined;

interface LogLine {
  msg?: string;
  image?: string;
  mode?: string;
}
const modeSwitches = (image: string): string[] =>
  rs
    .log()
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as LogLine];
      } catch {
        return [];
      }
    })
    .filter((l) => l.image === image && typeof l.mode === 'string' && /^web seed/.test(l.msg ?? ''))
    .map((l) => l.mode!);

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-webseed-'));
  netns = new Netns();
  lan = buildSwarmLan(netns, { nodes: 1, mbit: MBIT });
  // The seeder stays down once killed; 1 Mbit/s of web seed while it runs (a tenth of the link).
  rs = await startRackseedProcess({
    netns,
    ns: lan.server.ns,
    httpAddress: lan.server.ip,
    config: 'tftp:\n  enabled: false\ntorrent:\n  seeder_restart_seconds: 3600\n  webseed_rate_mbit_while_seeding: 1\n',
    inventory: 'cluster:\n  name: t\n',
    logLevel: 'info',
  });
});

afterAll(async () => {
  if (node) await netns.stop(node.child);
  await rs?.stop();
  netns?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the web seed yields to a healthy seeder and takes over when it dies', () => {
  it('is throttled while the seeder seeds, full speed once it is killed, and the node completes from it', async () => {
    const image = await writeTestImage(path.join(rs.dir, 'data'), { name: 'ws', size: SIZE, publicUrl: URL });
    const token = readFileSync(path.join(rs.dir, 'data', 'admin-token'), 'utf8').trim();
    expect(netns.run(lan.server.ns, 'curl', ['-sf', '-X', 'POST', '-H', `Authorization: Bearer ${token}`, `${URL}/api/v1/images/rescan`]).status).toBe(0);
    const swarmOf = () => rs.api<SwarmView>('/swarm').images.find((i) => i.name === 'ws');
    await waitFor('the seeder seeding ws', () => swarmOf()?.seeder?.state === 'seeding', 30_000, 200);

    const aria2Log = path.join(work, 'aria2c.log');
    node = startNodeDownload(netns, lan.nodes[0]!.ns, image, path.join(work, 'node'), [`--log=${aria2Log}`, '--log-level=debug']);
    await waitFor('the seeder to upload 4 MiB', () => (swarmOf()?.seeder?.uploaded ?? 0) > 4 * 1024 * 1024, 30_000, 100);
    // aria2c asked the web seed for pieces alongside the seeder, and was answered at the throttled rate.
    expect(modeSwitches('ws')).toEqual(['throttled']);
    expect(readFileSync(aria2Log, 'utf8')).toMatch(/X-Rackseed-Webseed: throttled/);
    // The seeder was told which pieces the web seed delivered whole (super-seeding skips them).
    await waitFor('the seeder to count web-seed pieces', () => (swarmOf()?.seeder?.webSeedPieces ?? 0) > 0, 20_000, 200);

    const pid = rs.api<SwarmView>('/swarm').seeder.pid!;
    netns.track(pid);
    netns.kill(pid, 'SIGKILL');
    await waitFor('the server to notice', () => !rs.api<SwarmView>('/swarm').seeder.running, 5000, 100);
    expect(node.done()).toBe(false);

    // With no seeder and no other peer, every remaining piece comes from the web seed, now unthrottled.
    await waitFor(
      'the node to finish from the web seed',
      () => {
        if (node!.child.exitCode !== null && !node!.done()) throw new Error(`aria2c exited with ${node!.child.exitCode}: ${node!.output()}`);
        return node!.done();
      },
      120_000,
      200,
    );
    expect(await sha256File(node.file)).toBe(image.sha256);
    expect(modeSwitches('ws')).toEqual(['throttled', 'full']);
    expect(rs.api<SwarmView>('/swarm').seeder).toMatchObject({ running: false, restarts: 1 });
  }, 180_000);
});
