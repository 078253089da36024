import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';

/**
 * FANOUT_TRACE=1: a timeline of the BitTorrent run, to see where the time goes. Once per FANOUT_TRACE_MS (default
 * 1000): what the seeder and the server's link have sent, how much the nodes hold (min / median / max, or every node
 * with FANOUT_TRACE_NODES=1) and how many pieces the web seed delivered; at the end the CPU the nodes' aria2c used
 * and the host's CPU split. Tracing costs a curl and a /proc read per tick: leave it off for the figures you keep.
 */
export interface FanoutTraceSources {
  bytes: number;
  nodes: number;
  /** Where node i's copy grows (a sparse file on tmpfs: its allocated blocks are the bytes received). */
  nodeFile: (i: number) => string;
  seeder: () => { uploaded: number; webSeedPieces?: number; firstRound?: { pieces: number; of: number }; peers?: Array<{ ip: string; uploaded: number }> } | undefined;
  /** The nodes' addresses, nodes in order (to tell what the seeder sent each of them). */
  nodeIps?: string[];
  serverSent: () => number;
  /** Bytes each node has sent and received on its link so far (the bridge port's counters), nodes in order. */
  links?: () => { up: number[]; down: number[]; drops: number };
  /** Established TCP connections of node i (FANOUT_TRACE_CONNS=1 prints them every tick). */
  connections?: (i: number) => number;
  say: (line: string) => void;
}

export interface FanoutTrace {
  stop(perNode: number[]): void;
}

const cpuLine = () => readFileSync('/proc/stat', 'utf8').split('\n')[0]!;

/** Seconds of CPU (user + system) all running processes called `cmd` have used, from ps. */
const cpuSeconds = (cmd: string) =>
  spawnSync('ps', ['-C', cmd, '-o', 'times='], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .reduce((a, b) => a + Number(b), 0);

/** "min X median Y max Z" of a non-empty list, to `digits` decimals. */
const spread = (xs: number[], digits: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return `min ${s[0]!.toFixed(digits)} median ${s[s.length >> 1]!.toFixed(digits)} max ${s[s.length - 1]!.toFixed(digits)}`;
};

const mbitPerSecond = (bytes: number, ms: number) => (bytes * 8) / (ms / 1000) / 1e6;

export function startFanoutTrace(src: FanoutTraceSources): FanoutTrace | undefined {
  if (process.env.FANOUT_TRACE !== '1') return undefined;
  const start = Date.now();
  const statAtStart = cpuLine();
  const copies = (b: number) => (b / src.bytes).toFixed(3);
  let lastLinks = src.links?.();
  let lastTick = Date.now();
  let lastFromSeeder: number[] | undefined;
  const timer = setInterval(() => {
    const links = src.links?.();
    const now = Date.now();
    if (links && lastLinks) {
      // Mbit/s per node over the last tick: how full the nodes' uplinks and downlinks were.
      const mbit = (a: number[], b: number[]) => a.map((x, i) => mbitPerSecond(x - b[i]!, now - lastTick));
      const stats = (xs: number[]) => `${spread(xs, 0)} mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(0)}`;
      const up = mbit(links.up, lastLinks.up);
      const down = mbit(links.down, lastLinks.down);
      src.say(`trace links Mbit/s: up ${stats(up)}; down ${stats(down)}; tbf drops ${links.drops - lastLinks.drops}`);
      if (process.env.FANOUT_TRACE_NODES === '1') src.say(`trace nodes Mbit/s up/down: ${up.map((u, i) => `${u.toFixed(0)}/${down[i]!.toFixed(0)}`).join(' ')}`);
    }
    const seeder = src.seeder();
    if (process.env.FANOUT_TRACE_NODES === '1' && src.nodeIps && seeder?.peers) {
      // What the seeder sent each node over the last tick (a wire's counter starts again when it reconnects).
      const fromSeeder = src.nodeIps.map((ip) => seeder.peers!.filter((p) => p.ip === ip).reduce((a, p) => a + p.uploaded, 0));
      if (lastFromSeeder) src.say(`trace seeder Mbit/s to each node: ${fromSeeder.map((b, i) => mbitPerSecond(Math.max(0, b - lastFromSeeder![i]!), now - lastTick).toFixed(0)).join(' ')}`);
      lastFromSeeder = fromSeeder;
    }
    lastLinks = links;
    lastTick = now;
    const held = Array.from({ length: src.nodes }, (_, i) => {
      try {
        return (statSync(src.nodeFile(i)).blocks * 512) / src.bytes;
      } catch {
        return 0;
      }
    });
    if (process.env.FANOUT_TRACE_NODES === '1') src.say(`trace nodes: ${held.map((x) => x.toFixed(2)).join(' ')}`);
    if (process.env.FANOUT_TRACE_CONNS === '1' && src.connections) src.say(`trace conns: ${held.map((_, i) => src.connections!(i)).join(' ')}`);
    src.say(
      `trace ${((Date.now() - start) / 1000).toFixed(2)} s: seeder ${copies(seeder?.uploaded ?? 0)} copies, server link ${copies(src.serverSent())}; ` +
        `nodes hold ${spread(held, 3)}; web seed pieces ${seeder?.webSeedPieces ?? '?'}; first round ${seeder?.firstRound ? `${seeder.firstRound.pieces}/${seeder.firstRound.of}` : '?'}; seeder wires ${seeder?.peers?.length ?? '?'} to ${new Set(seeder?.peers?.map((p) => p.ip)).size} nodes`,
    );
  }, Number(process.env.FANOUT_TRACE_MS ?? 1000));
  return {
    stop(perNode) {
      clearInterval(timer);
      src.say(`trace per node done (s), by node: ${perNode.map((t) => t.toFixed(2)).join(' ')}`);
      src.say(`trace cpu: aria2c on all nodes ${cpuSeconds('aria2c')} s; /proc/stat cpu from ${statAtStart} to ${cpuLine()}`);
    },
  };
}
