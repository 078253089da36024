import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Netns } from '../../test/support/netns.js';
import type { SwarmLan } from '../../test/support/swarm.js';

/**
 * What this host can physically move through the shaped LAN: every node fetches `file` from its neighbour at once
 * (busybox httpd -> curl, a ring, no hashing, no disk). No fanout in which every node must receive the whole image
 * over its own link can beat this on this host; on a machine with fewer cores than nodes it is well above t_link,
 * because veth, bridge and tbf all run on the host's CPUs.
 */
export async function ringSeconds(netns: Netns, lan: SwarmLan, file: string, work: string): Promise<number> {
  const dir = path.join(work, 'ring');
  mkdirSync(dir, { recursive: true });
  copyFileSync(file, path.join(dir, 'f'));
  const servers = lan.nodes.map((n) => netns.spawn(n.ns, 'busybox', ['httpd', '-f', '-p', '8000', '-h', dir]));
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const start = Date.now();
    const clients = lan.nodes.map((n, i) => netns.spawn(n.ns, 'curl', ['-sf', '-o', '/dev/null', `http://${lan.nodes[(i + 1) % lan.nodes.length]!.ip}:8000/f`]));
    const codes = await Promise.all(clients.map((c) => new Promise<number | null>((r) => c.once('exit', (code) => r(code)))));
    if (codes.some((c) => c !== 0)) throw new Error(`ring transfer failed: exit codes ${codes.join(',')}`);
    return (Date.now() - start) / 1000;
  } finally {
    for (const s of servers) await netns.stop(s);
  }
}
