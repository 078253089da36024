import type { Netns } from '../../test/support/netns.js';

export interface ExchangeStats {
  sent: number;
  received: number;
  drops: number;
  /** Replies perfdhcp could not match to a request it sent (late after a drop, or a stranger's). */
  orphans: number;
  rejectedLeases: number;
  nonUniqueAddresses: number;
  avgDelayMs: number | undefined;
}

export interface PerfdhcpResult {
  /** perfdhcp's own "Rate:" line (4-way exchanges per second over its measured run time). */
  reportedRate: number | undefined;
  discoverOffer: ExchangeStats;
  requestAck: ExchangeStats;
  /** Wall time of the perfdhcp process, for the record. */
  wallMs: number;
  raw: string;
}

export interface PerfdhcpOptions {
  netns: Netns;
  ns: string;
  ifname: string;
  server: string;
  rate: number;
  clients: number;
  periodSeconds: number;
}

const num = (block: string, label: string): number => {
  const m = new RegExp(`^${label}: ([\\d.]+)`, 'm').exec(block);
  if (!m) throw new Error(`perfdhcp output has no "${label}" line in:\n${block}`);
  return Number(m[1]);
};

function exchange(out: string, name: string): ExchangeStats {
  const start = out.indexOf(`***Statistics for: ${name}***`);
  if (start < 0) throw new Error(`perfdhcp output has no ${name} statistics:\n${out}`);
  const next = out.indexOf('***', start + name.length + 20);
  const block = out.slice(start, next < 0 ? undefined : next);
  const delay = /^avg delay: ([\d.]+) ms/m.exec(block);
  return {
    sent: num(block, 'sent packets'),
    received: num(block, 'received packets'),
    drops: num(block, 'drops'),
    orphans: num(block, 'orphans'),
    rejectedLeases: num(block, 'rejected leases'),
    nonUniqueAddresses: num(block, 'non unique addresses'),
    avgDelayMs: delay ? Number(delay[1]) : undefined,
  };
}

export function parsePerfdhcp(out: string, wallMs = 0): PerfdhcpResult {
  const rate = /^Rate: ([\d.]+) 4-way exchanges\/second/m.exec(out);
  return {
    reportedRate: rate ? Number(rate[1]) : undefined,
    discoverOffer: exchange(out, 'DISCOVER-OFFER'),
    requestAck: exchange(out, 'REQUEST-ACK'),
    wallMs,
    raw: out,
  };
}

/**
 * Runs perfdhcp as a relay (`-l IF` with a unicast server address: giaddr = IF's address, replies come back to
 * port 67 there). Asynchronous on purpose: a spawnSync would stop this process from draining the server's log
 * pipe, and a full pipe blocks the server's synchronous stdout writes, which would measure the harness instead.
 */
export function runPerfdhcp(o: PerfdhcpOptions): Promise<PerfdhcpResult> {
  const args = ['-4', '-l', o.ifname, '-r', String(o.rate), '-R', String(o.clients), '-p', String(o.periodSeconds), o.server];
  const t0 = performance.now();
  const child = o.netns.spawn(o.ns, 'perfdhcp', args);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  // perfdhcp stops itself after -p; the guard only bounds a hung run.
  const guard = setTimeout(() => void o.netns.stop(child, 'SIGKILL'), (o.periodSeconds + 30) * 1000);
  return new Promise((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(guard);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(guard);
      // perfdhcp exits 3 when it saw drops; that is a result here, not a failure.
      if (signal !== null || (code !== 0 && code !== 3)) {
        reject(new Error(`perfdhcp ${args.join(' ')} ended with ${signal ?? code}:\n${out}`));
        return;
      }
      try {
        resolve(parsePerfdhcp(out, performance.now() - t0));
      } catch (e) {
        reject(e);
      }
    });
  });
}
