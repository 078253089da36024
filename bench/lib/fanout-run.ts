import { rmSync } from 'node:fs';
import path from 'node:path';
import { IMAGE_FILES } from '../../server/model/image.js';
import type { Netns } from '../../test/support/netns.js';
import { sha256File, startNodeDownload, type NodeDownload, type SwarmLan, type TestImage } from '../../test/support/swarm.js';

export interface FanoutRun {
  seconds: number;
  /** Per node, seconds from the common start until its copy was complete. */
  perNode: number[];
}

const TIMEOUT_MS = 15 * 60_000;

/** Where node i's BitTorrent copy lands (its aria2c --dir), and the copy itself. */
export const btDir = (work: string, i: number) => path.join(work, `bt-${i}`);
export const btCopy = (work: string, i: number) => path.join(btDir(work, i), IMAGE_FILES.rootfs);

async function poll(what: string, check: () => boolean, startedAt: number): Promise<void> {
  while (!check()) {
    if (Date.now() - startedAt > TIMEOUT_MS) throw new Error(`${what}: not done after ${TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The first `nodes` start `ms` before the others: a wave the tracker may see as two (a few nodes booted early). */
export interface EarlyStart {
  nodes: number;
  ms: number;
}

/**
 * Every node runs the installer's aria2c at once (or the early ones first); done when each has every piece verified
 * (its hook ran). Times count from the first start.
 */
export async function fanoutBittorrent(netns: Netns, lan: SwarmLan, image: TestImage, work: string, extraArgs: string[] = [], early?: EarlyStart): Promise<FanoutRun & { downloads: NodeDownload[] }> {
  const start = Date.now();
  const downloads: NodeDownload[] = [];
  for (const [i, n] of lan.nodes.entries()) {
    if (early && i === early.nodes) await new Promise((r) => setTimeout(r, early.ms));
    downloads.push(startNodeDownload(netns, n.ns, image, btDir(work, i), extraArgs));
  }
  const perNode: Array<number | undefined> = downloads.map(() => undefined);
  await poll('BitTorrent fanout', () => {
    downloads.forEach((d, i) => {
      if (perNode[i] === undefined && d.done()) perNode[i] = (Date.now() - start) / 1000;
      if (d.child.exitCode !== null && !d.done()) throw new Error(`aria2c on node ${i} exited with ${d.child.exitCode}: ${d.output()}`);
    });
    return perNode.every((t) => t !== undefined);
  }, start);
  return { seconds: (Date.now() - start) / 1000, perNode: perNode as number[], downloads };
}

/** Every node fetches the file over plain HTTP from rackseed's /files route at once (curl, one connection each). */
export async function fanoutHttp(netns: Netns, lan: SwarmLan, image: TestImage, work: string): Promise<FanoutRun & { files: string[] }> {
  const start = Date.now();
  const files = lan.nodes.map((_, i) => path.join(work, `http-${i}.img`));
  const perNode: Array<number | undefined> = files.map(() => undefined);
  const children = lan.nodes.map((n, i) => {
    const c = netns.spawn(n.ns, 'curl', ['-sf', '--max-time', String(TIMEOUT_MS / 1000), '-o', files[i]!, image.fileUrl]);
    c.once('exit', (code) => {
      if (code === 0) perNode[i] = (Date.now() - start) / 1000;
    });
    return c;
  });
  await poll('HTTP fanout', () => {
    children.forEach((c, i) => {
      if (c.exitCode !== null && c.exitCode !== 0) throw new Error(`curl on node ${i} exited with ${c.exitCode}`);
    });
    return perNode.every((t) => t !== undefined);
  }, start);
  return { seconds: (Date.now() - start) / 1000, perNode: perNode as number[], files };
}

/** Outside the timed window: every copy must hash to the manifest's sha256. */
export async function verifyCopies(files: string[], image: TestImage): Promise<void> {
  for (const f of files) {
    const got = await sha256File(f);
    if (got !== image.sha256) throw new Error(`${f}: sha256 ${got}, expected ${image.sha256}`);
  }
}

export function removeCopies(paths: string[]): void {
  for (const p of paths) rmSync(p, { recursive: true, force: true });
}

/** Bytes each interface of the namespace has received and sent (/proc/net/dev), loopback left out. */
function linkCounters(netns: Netns, ns: string): Map<string, { rx: number; tx: number }> {
  const r = netns.run(ns, 'cat', ['/proc/net/dev']);
  if (r.status !== 0) throw new Error(`/proc/net/dev in ${ns}: ${r.stderr}`);
  const counters = new Map<string, { rx: number; tx: number }>();
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    // Receive has 8 columns, then transmit bytes.
    const columns = m[2]!.trim().split(/\s+/);
    counters.set(m[1]!, { rx: Number(columns[0] ?? 0), tx: Number(columns[8] ?? 0) });
  }
  return counters;
}

/** Bytes the namespace has sent on all its interfaces but loopback: what the server's uplink carried. */
export function txBytes(netns: Netns, ns: string): number {
  let sum = 0;
  for (const { tx } of linkCounters(netns, ns).values()) sum += tx;
  return sum;
}

/**
 * The nodes' bridge ports' counters, nodes in order: a port's rx is what its node sent, its tx what the node
 * received; drops are the tbf shapers' on the bridge side (the nodes' downlinks and the server's).
 */
export function bridgePortStats(netns: Netns, bridgeNs: string, ports: string[]): { up: number[]; down: number[]; drops: number } {
  const counters = linkCounters(netns, bridgeNs);
  const qdiscs = JSON.parse(netns.run(bridgeNs, 'tc', ['-s', '-j', 'qdisc', 'show']).stdout || '[]') as Array<{ kind: string; drops?: number }>;
  return {
    up: ports.map((p) => counters.get(p)?.rx ?? 0),
    down: ports.map((p) => counters.get(p)?.tx ?? 0),
    drops: qdiscs.filter((q) => q.kind === 'tbf').reduce((a, q) => a + (q.drops ?? 0), 0),
  };
}
