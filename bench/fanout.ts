/**
 * Image fanout: N nodes (FANOUT_NODES, default 16) behind one bridge, every link including the server's shaped with
 * tbf to FANOUT_MBIT (default 100) in both directions, one image of FANOUT_BYTES random bytes (default 256 MiB).
 * Measures the time until every node holds the image (a) over rackseed's BitTorrent path (the installer's aria2c,
 * rackseed's seeder + tracker + web seed) and (b) over plain HTTP from rackseed's /files route to all N at once.
 * Copies are checked against the manifest's sha256 after each timed run. The last output line is JSON for CI.
 *
 *   npx tsx bench/fanout.ts          FANOUT_NODES=8 FANOUT_BYTES=67108864 npx tsx bench/fanout.ts
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Netns } from '../test/support/netns.js';
import { startRackseedProcess, type RackseedProcess } from '../test/support/rackseed-process.js';
import { aria2cCommandLine, buildSwarmLan, writeTestImage } from '../test/support/swarm.js';
import { ringSeconds } from './lib/fanout-capacity.js';
import { startFanoutTrace } from './lib/fanout-trace.js';
import { bridgePortStats, btCopy, fanoutBittorrent, fanoutHttp, removeCopies, txBytes, verifyCopies, type EarlyStart } from './lib/fanout-run.js';
import { envInt } from './lib/env.js';

/** Sizes of the batches of starting nodes the tracker placed in its swarm graph, from the server's JSON log. */
function placedBatches(log: string): number[] {
  const sizes: number[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes('placed in the swarm graph')) continue;
    try {
      sizes.push((JSON.parse(line) as { nodes: string[] }).nodes.length);
    } catch {
      // not a JSON line: skip it
    }
  }
  return sizes;
}

const NODES = envInt('FANOUT_NODES', 16, 1, 200);
const BYTES = envInt('FANOUT_BYTES', 256 * 1024 * 1024, 1024 * 1024, 8 * 1024 ** 3);
const MBIT = envInt('FANOUT_MBIT', 100, 1, 100_000);
const URL = 'http://10.0.0.1:8080';
/** Extra rackseed.yaml text (e.g. a torrent: section) for tuning runs. */
const SERVER_CONFIG = process.env.FANOUT_SERVER_CONFIG ?? '';
/** FANOUT_HTTP=0 skips the (slow) HTTP run while tuning BitTorrent; the JSON then has null for it. */
const RUN_HTTP = process.env.FANOUT_HTTP !== '0';
/**
 * Tuning knobs: FANOUT_PIECE_KIB (default: defaultPieceLength's choice), FANOUT_ARIA2C_ARGS (extra node flags),
 * FANOUT_BURST (tbf burst bytes) and FANOUT_QUEUE_MS (tbf queue), FANOUT_RING=0 (skip the host-capacity ring),
 * FANOUT_TRACE=1 (a timeline, bench/lib/fanout-trace.ts), FANOUT_EARLY=K:MS (the first K nodes start MS ms before
 * the rest). The served torrent always carries the web seed (it is rewritten per request), so there is no knob to
 * drop it.
 */
const PIECE_KIB = process.env.FANOUT_PIECE_KIB ? envInt('FANOUT_PIECE_KIB', 256, 16, 16384) : undefined;
const BURST = process.env.FANOUT_BURST ? envInt('FANOUT_BURST', 131072, 1600, 64 * 1024 * 1024) : undefined;
const QUEUE_MS = process.env.FANOUT_QUEUE_MS ? envInt('FANOUT_QUEUE_MS', 50, 1, 10_000) : undefined;
const NODE_ARGS = (process.env.FANOUT_ARIA2C_ARGS ?? '').split(' ').filter(Boolean);
const EARLY = earlyStart(process.env.FANOUT_EARLY);

function earlyStart(spec: string | undefined): EarlyStart | undefined {
  if (!spec) return undefined;
  const m = /^(\d+):(\d+)$/.exec(spec);
  const [nodes, ms] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!(nodes >= 1 && nodes < NODES && ms <= 60_000)) throw new Error(`FANOUT_EARLY must be K:MS, 1 <= K < ${NODES} nodes started MS (at most 60000) ms before the rest`);
  return { nodes, ms };
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const fmt = (x: number) => x.toFixed(2);

async function main(): Promise<void> {
  // Node copies go to tmpfs when it exists: 16 "nodes" writing to one shared virtual disk is not what 16 machines
  // with a disk each do, and the disk (not the network) would be measured.
  const work = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'rackseed-fanout-'));
  // 16 copies of the image in tmpfs are GBs of RAM: they go on Ctrl-C too (Netns exits the process on SIGINT/SIGTERM).
  process.once('exit', () => rmSync(work, { recursive: true, force: true }));
  const netns = new Netns();
  let rs: RackseedProcess | undefined;
  try {
    const lan = buildSwarmLan(netns, { nodes: NODES, mbit: MBIT, ...(BURST ? { burstBytes: BURST } : {}), ...(QUEUE_MS ? { queueMs: QUEUE_MS } : {}) });
    rs = await startRackseedProcess({ netns, ns: lan.server.ns, httpAddress: lan.server.ip, config: `tftp:\n  enabled: false\n${SERVER_CONFIG}`, inventory: 'cluster:\n  name: bench\n', logLevel: 'info' });
    const server = rs;
    const image = await writeTestImage(path.join(server.dir, 'data'), { name: 'fanout', size: BYTES, publicUrl: URL, ...(PIECE_KIB ? { pieceLength: PIECE_KIB * 1024 } : {}) });
    const token = readFileSync(path.join(server.dir, 'data', 'admin-token'), 'utf8').trim();
    netns.run(lan.server.ns, 'curl', ['-sf', '-X', 'POST', '-H', `Authorization: Bearer ${token}`, `${URL}/api/v1/images/rescan`]);
    const seeding = Date.now() + 120_000;
    for (;;) {
      const s = server.api<{ images: Array<{ name: string; seeder: { state: string } | null }> }>('/swarm');
      if (s.images.find((i) => i.name === 'fanout')?.seeder?.state === 'seeding') break;
      if (Date.now() > seeding) throw new Error('the seeder did not start seeding within 120 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    const tLink = (BYTES * 8) / (MBIT * 1e6);
    say(`fanout: ${NODES} nodes, ${(BYTES / 2 ** 20).toFixed(0)} MiB image, every link ${MBIT} Mbit/s (tbf both ways); one copy over one link: ${fmt(tLink)} s`);
    say(`node command: ${aria2cCommandLine({ torrentUrl: image.torrentUrl, dir: '<dir>', hook: '<hook>' })}`);
    if (EARLY) say(`early start: the first ${EARLY.nodes} node(s) start ${EARLY.ms} ms before the other ${NODES - EARLY.nodes}`);

    // FANOUT_RING=0 skips the host-capacity ring while tuning (the ratio to it is then against t_link).
    const measureRing = lan.nodes.length > 1 && process.env.FANOUT_RING !== '0';
    const ring = measureRing ? await ringSeconds(netns, lan, path.join(image.dir, 'rootfs.tar.zst'), work) : tLink;
    if (measureRing) say(`host capacity: all ${NODES} nodes receiving ${(BYTES / 2 ** 20).toFixed(0)} MiB from a neighbour at once (plain HTTP ring) took ${fmt(ring)} s = ${fmt(ring / tLink)} x t_link: the floor for any fanout on this host`);
    else say('host capacity: not measured (FANOUT_RING=0 or a single node); the host floor below is one link time');
    removeCopies([path.join(work, 'ring')]);

    const sentBefore = txBytes(netns, lan.server.ns);
    const trace = startFanoutTrace({
      bytes: BYTES,
      nodes: NODES,
      nodeFile: (i) => btCopy(work, i),
      seeder: () => server.api<{ images: Array<{ name: string; seeder: { uploaded: number; webSeedPieces?: number; firstRound?: { pieces: number; of: number }; peers?: Array<{ ip: string; uploaded: number }> } | null }> }>('/swarm').images.find((i) => i.name === 'fanout')?.seeder ?? undefined,
      serverSent: () => txBytes(netns, lan.server.ns) - sentBefore,
      nodeIps: lan.nodes.map((n) => n.ip),
      links: () => bridgePortStats(netns, lan.bridgeNs, lan.nodes.map((n) => n.port)),
      connections: (i) => netns.run(lan.nodes[i]!.ns, 'ss', ['-Htn', 'state', 'established']).stdout.split('\n').filter(Boolean).length,
      say,
    });
    const bt = await fanoutBittorrent(netns, lan, image, work, NODE_ARGS, EARLY);
    trace?.stop(bt.perNode);
    // FANOUT_TRACE_LOGDIR=DIR keeps each node's aria2c output (with FANOUT_ARIA2C_ARGS='--log=- --log-level=info', its log).
    const logDir = process.env.FANOUT_TRACE_LOGDIR;
    if (logDir) bt.downloads.forEach((d, i) => writeFileSync(path.join(logDir, `node-${i}.log`), d.output()));
    if (logDir) writeFileSync(path.join(logDir, 'server.log'), server.log());
    const batches = placedBatches(server.log());
    if (batches.length > 0) say(`tracker: the nodes were placed in the swarm graph in batches of ${batches.join(', ')}`);
    const serverSent = txBytes(netns, lan.server.ns) - sentBefore;
    const swarm = server.api<{ images: Array<{ name: string; peers: Array<{ ip: string; uploaded: number }>; seeder: { uploaded: number } | null }> }>('/swarm').images.find((i) => i.name === 'fanout');
    await Promise.all(bt.downloads.map((d) => netns.stop(d.child)));
    await verifyCopies(bt.downloads.map((d) => d.file), image);
    const sorted = [...bt.perNode].sort((a, b) => a - b);
    say(`bittorrent: all ${NODES} verified in ${fmt(bt.seconds)} s (first ${fmt(sorted[0]!)} s, median ${fmt(sorted[Math.floor(NODES / 2)]!)} s); seeder uploaded ${((swarm?.seeder?.uploaded ?? 0) / BYTES).toFixed(2)} copies, the server's link carried ${(serverSent / BYTES).toFixed(2)} (seeder + web seed + overhead)`);
    removeCopies(bt.downloads.map((d) => d.dir));

    let tHttp: number | null = null;
    if (RUN_HTTP) {
      const http = await fanoutHttp(netns, lan, image, work);
      await verifyCopies(http.files, image);
      say(`http: all ${NODES} complete in ${fmt(http.seconds)} s (first ${fmt(Math.min(...http.perNode))} s); sha256 verified after the timed run`);
      removeCopies(http.files);
      tHttp = http.seconds;
    }

    const result = {
      bench: 'fanout',
      nodes: NODES,
      bytes: BYTES,
      link_mbit: MBIT,
      t_bittorrent_s: +fmt(bt.seconds),
      t_http_s: tHttp === null ? null : +fmt(tHttp),
      t_link_s: +fmt(tLink),
      bt_over_link: +(bt.seconds / tLink).toFixed(3),
      http_over_bt: tHttp === null ? null : +(tHttp / bt.seconds).toFixed(3),
      server_copies_bt: +(serverSent / BYTES).toFixed(2),
    };
    say(`bittorrent / one link: ${result.bt_over_link} (goal <= 1.3); bittorrent / host floor: ${fmt(bt.seconds / ring)}; http / bittorrent: ${result.http_over_bt} (goal >= 10)`);
    say(JSON.stringify(result));
  } finally {
    await rs?.stop().catch(() => undefined);
    netns.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`fanout: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
