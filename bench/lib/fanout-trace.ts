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
  seeder: () => { uploaded: number; webSeedPieces?: number } | undefined;
  serverSent: () => number;
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

export function startFanoutTrace(src: FanoutTraceSources): FanoutTrace | undefined {
  if (process.env.FANOUT_TRACE !== '1') return undefined;
  const start = Date.now();
  const statAtStart = cpuLine();
  const copies = (b: number) => (b / src.bytes).toFixed(3);
  const timer = setInterval(() => {
    const seeder = src.seeder();
    const held = Array.from({ length: src.nodes }, (_, i) => {
      try {
        return (statSync(src.nodeFile(i)).blocks * 512) / src.bytes;
      } catch {
        return 0;
      }
    });
    if (process.env.FANOUT_TRACE_NODES === '1') src.say(`trace nodes: ${held.map((x) => x.toFixed(2)).join(' ')}`);
    if (process.env.FANOUT_TRACE_CONNS === '1' && src.connections) src.say(`trace conns: ${held.map((_, i) => src.connections!(i)).join(' ')}`);
    const sorted = [...held].sort((a, b) => a - b);
    src.say(
      `trace ${((Date.now() - start) / 1000).toFixed(2)} s: seeder ${copies(seeder?.uploaded ?? 0)} copies, server link ${copies(src.serverSent())}; ` +
        `nodes hold min ${sorted[0]!.toFixed(3)} median ${sorted[sorted.length >> 1]!.toFixed(3)} max ${sorted[sorted.length - 1]!.toFixed(3)}; web seed pieces ${seeder?.webSeedPieces ?? '?'}`,
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
