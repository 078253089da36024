import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createReadStream, existsSync, mkdirSync, openSync, closeSync, writeSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { imagesDir } from '../../server/images/catalog.js';
import { makeTorrent } from '../../server/images/torrent.js';
import { IMAGE_FILES, type ImageManifest } from '../../server/model/image.js';
import type { Netns } from './netns.js';

/**
 * What the swarm tests and the fanout benchmark share: a LAN of namespaces behind one bridge, a generated image
 * laid out as server/model/image.ts says, and the node-side download exactly as the installer runs it.
 */

/** Seeding time that outlives any install: the installer stops aria2c itself right before the node reboots. */
export const SEED_MINUTES = 1440;
/** Name of the marker the completion hook writes into the download directory (its content: the file's path). */
export const DONE_MARKER = 'aria2.done';

/**
 * The completion hook. aria2c calls it with (GID, number of files, first file path) once every piece has verified,
 * BEFORE seeding (--on-bt-download-complete, unlike --on-download-complete which waits for seeding to end), and also
 * after a restart whose --check-integrity finds the file complete. Written atomically so a poller never sees half.
 */
export const ARIA2C_DONE_HOOK = `#!/bin/sh\nd=$(dirname "$3")\necho "$3" > "$d/${DONE_MARKER}.tmp" && mv "$d/${DONE_MARKER}.tmp" "$d/${DONE_MARKER}"\n`;

export interface Aria2cOptions {
  /** URL of the image's .torrent (…/files/images/<name>/rootfs.tar.zst.torrent). */
  torrentUrl: string;
  /** Directory the image file lands in (and is seeded from). */
  dir: string;
  /** Path of ARIA2C_DONE_HOOK, executable. */
  hook: string;
  /** TCP port for peers; 6881 on a node. */
  listenPort?: number;
}

/**
 * The installer's download step. Every option is deliberate:
 * - seed-ratio 0.0 (= ignore the ratio) + a day of seed-time: the node keeps seeding until the installer kills it
 *   before reboot, so every node serves the nodes behind it (Luna's current client stops at once).
 * - no DHT, LPD or PEX: private torrents, our tracker only; bt-tracker-interval 0 obeys the tracker's interval.
 * - follow-torrent=mem: the .torrent URL is fetched over HTTP and never written next to the image.
 * - check-integrity + bt-hash-check-seed: a restarted download re-verifies what is on disk and resumes; a complete
 *   file is verified, then seeded.
 * - file-allocation=none: no preallocation pass (works on tmpfs and any disk); pieces land at their offsets.
 * - the torrent's web seed (rackseed's /files route) is used by aria2c automatically, so the swarm survives a dead
 *   seeder (rackseed throttles it while its seeder is healthy, server/net/http/webseed-throttle.ts).
 * - bt-max-peers 0 (no limit): rack-sized swarms are small; every node may talk to every other.
 * - stream-piece-selector random: the pieces a node takes from the web seed are its own random choice, not the
 *   first missing ones, so sixteen nodes do not all pull the same pieces over the server's uplink; the server tells
 *   its seeder which pieces went out that way and super-seeding skips them (bench:fanout: 34.2 -> 32.6 s).
 */
export function aria2cArgs(o: Aria2cOptions): string[] {
  return [
    '--seed-ratio=0.0',
    `--seed-time=${SEED_MINUTES}`,
    '--bt-enable-lpd=false',
    '--enable-dht=false',
    '--enable-dht6=false',
    '--enable-peer-exchange=false',
    '--bt-tracker-interval=0',
    '--follow-torrent=mem',
    '--check-integrity=true',
    '--bt-hash-check-seed=true',
    '--file-allocation=none',
    '--bt-max-peers=0',
    '--stream-piece-selector=random',
    `--listen-port=${o.listenPort ?? 6881}`,
    `--on-bt-download-complete=${o.hook}`,
    '--summary-interval=0',
    '--console-log-level=warn',
    '--show-console-readout=false',
    `--dir=${o.dir}`,
    o.torrentUrl,
  ];
}

/** The same as one shell line, for the installer template and for reports. */
export function aria2cCommandLine(o: Aria2cOptions): string {
  return ['aria2c', ...aria2cArgs(o)].join(' ');
}

export interface TestImage {
  name: string;
  size: number;
  sha256: string;
  infoHash: string;
  /** The image directory inside the server's data dir. */
  dir: string;
  torrentUrl: string;
  fileUrl: string;
}

/**
 * Lays out an image of `size` random bytes in <dataDir>/files/images/<name>/ with its torrent (made for
 * `publicUrl`: announce + web seed) and manifest, manifest last as the catalog expects.
 */
export async function writeTestImage(dataDir: string, opts: { name: string; size: number; publicUrl: string; pieceLength?: number; webSeed?: boolean }): Promise<TestImage> {
  const dir = path.join(imagesDir(dataDir), opts.name);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, IMAGE_FILES.rootfs);
  const hash = createHash('sha256');
  const fd = openSync(file, 'w');
  try {
    for (let left = opts.size; left > 0; ) {
      const chunk = randomBytes(Math.min(left, 4 << 20));
      hash.update(chunk);
      writeSync(fd, chunk);
      left -= chunk.length;
    }
  } finally {
    closeSync(fd);
  }
  const sha256 = hash.digest('hex');
  const urlPath = `${opts.publicUrl}/files/images/${opts.name}`;
  const fileUrl = `${urlPath}/${IMAGE_FILES.rootfs}`;
  const t = await makeTorrent({ file, announce: [`${opts.publicUrl}/announce`], webSeeds: opts.webSeed === false ? [] : [fileUrl], ...(opts.pieceLength ? { pieceLength: opts.pieceLength } : {}) }, opts.size);
  writeFileSync(path.join(dir, IMAGE_FILES.torrent), t.bytes);
  const manifest: ImageManifest = {
    version: 1,
    name: opts.name,
    createdAt: new Date().toISOString(),
    source: { kind: 'import', from: 'test: random bytes' },
    artefacts: { rootfs: { file: IMAGE_FILES.rootfs, sha256, size: opts.size } },
    torrent: { file: IMAGE_FILES.torrent, infoHash: t.infoHash, pieceLength: t.pieceLength },
  };
  writeFileSync(path.join(dir, IMAGE_FILES.manifest), JSON.stringify(manifest, null, 2));
  return { name: opts.name, size: opts.size, sha256, infoHash: t.infoHash, dir, torrentUrl: `${urlPath}/${IMAGE_FILES.torrent}`, fileUrl };
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface SwarmLan {
  /** Namespace holding only the bridge (so the server's link is a shaped veth like every node's). */
  bridgeNs: string;
  server: SwarmHost;
  nodes: SwarmHost[];
  /** Adds one more host on the bridge (a misbehaving peer, say). */
  addHost(suffix: string, ip: string): SwarmHost;
}

/** A host on the swarm's bridge; `port` is its bridge port (in bridgeNs), whose counters are the host's link. */
export interface SwarmHost {
  ns: string;
  ip: string;
  port: string;
}

/** A plain BitTorrent handshake (BEP 3, no extension bits) for `infoHashHex` from the 20-byte `peerId`. */
export function btHandshake(infoHashHex: string, peerId: Buffer): Buffer {
  return Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), Buffer.alloc(8), Buffer.from(infoHashHex, 'hex'), peerId]);
}

/**
 * 10.0.0.0/24 behind one bridge: the server at .1, nodes from .10. With `mbit`, every link is shaped with tbf in
 * both directions: on the host's end (its egress) and on the bridge port (its ingress, seen as the port's egress).
 */
export function buildSwarmLan(netns: Netns, opts: { nodes: number; mbit?: number; burstBytes?: number; queueMs?: number }): SwarmLan {
  const bridgeNs = netns.addNamespace('b');
  const br = netns.addBridge(bridgeNs, 'br');
  const shape = (ns: string, dev: string) => {
    if (!opts.mbit) return;
    // A queue of ~50 ms (close to a switch port, no deep buffer that hides the limit) and a burst of 128 KiB: above
    // the largest GSO packet (64 KiB), or tbf cuts every GSO packet into MTU-sized ones and the host's CPU, not the
    // link, is what gets measured (the 16-node ring: 1.23 x t_link with a 50 kB burst and no idle CPU, 1.09 x with
    // 128 KiB and the CPU 90 % idle). 128 KiB is 10 ms of a 100 Mbit/s link: the rate over any second is unchanged.
    const burst = opts.burstBytes ?? Math.max(128 * 1024, Math.ceil((opts.mbit * 1e6) / 8 / 250));
    const r = netns.run(ns, 'tc', ['qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${opts.mbit}mbit`, 'burst', String(burst), 'latency', `${opts.queueMs ?? 50}ms`]);
    if (r.status !== 0) throw new Error(`tc tbf on ${dev}: ${r.stderr}`);
  };
  let n = 0;
  const addHost = (suffix: string, ip: string): SwarmHost => {
    const ns = netns.addNamespace(suffix);
    const id = (n++).toString(36);
    const [inner, port] = netns.addVeth(ns, `e${id}`, bridgeNs, `p${id}`, { masterB: br });
    netns.addAddress(ns, inner, `${ip}/24`);
    shape(ns, inner);
    shape(bridgeNs, port);
    return { ns, ip, port };
  };
  const server = addHost('s', '10.0.0.1');
  const nodes = Array.from({ length: opts.nodes }, (_, i) => addHost(`n${i.toString(36)}`, `10.0.0.${10 + i}`));
  return { bridgeNs, server, nodes, addHost };
}

export interface NodeDownload {
  child: ChildProcess;
  dir: string;
  file: string;
  output(): string;
  done(): boolean;
}

/** Starts the installer's aria2c in `ns`, downloading into `dir` (created; the hook beside it). `extraArgs` override. */
export function startNodeDownload(netns: Netns, ns: string, image: TestImage, dir: string, extraArgs: string[] = []): NodeDownload {
  mkdirSync(dir, { recursive: true });
  const hook = path.join(dir, '..', `${path.basename(dir)}-hook.sh`);
  writeFileSync(hook, ARIA2C_DONE_HOOK);
  chmodSync(hook, 0o755);
  const args = aria2cArgs({ torrentUrl: image.torrentUrl, dir, hook });
  // aria2c takes the last value of a repeated option: extras go after ours, before the URL.
  const child = netns.spawn(ns, 'aria2c', [...args.slice(0, -1), ...extraArgs, ...args.slice(-1)]);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const file = path.join(dir, 'rootfs.tar.zst');
  return { child, dir, file, output: () => out, done: () => existsSync(path.join(dir, DONE_MARKER)) && readFileSync(path.join(dir, DONE_MARKER), 'utf8').trim() !== '' };
}
