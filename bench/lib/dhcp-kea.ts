import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Netns } from '../../test/support/netns.js';

export interface KeaNetwork {
  interface: string;
  serverIp: string;
  cidr: string;
  poolStart: string;
  poolEnd: string;
  leaseSeconds: number;
  router: string;
  dns: string;
  domain: string;
}

export interface KeaProcess {
  child: ChildProcess;
  leaseFile: string;
  /** Distinct addresses in the memfile's CSV (header and superseded rows for the same address folded). */
  leasesOnDisk(): number;
  log(): string;
  stop(): Promise<void>;
}

export function keaConfig(net: KeaNetwork, dir: string, multiThreaded: boolean): object {
  return {
    Dhcp4: {
      // UDP sockets like rackseed's (the default raw sockets would also do; this keeps the two paths alike).
      'interfaces-config': { interfaces: [`${net.interface}/${net.serverIp}`], 'dhcp-socket-type': 'udp' },
      // persist + lfc-interval 0: every lease is appended to the CSV, and no cleanup process rewrites it mid-run.
      'lease-database': { type: 'memfile', persist: true, name: path.join(dir, 'leases.csv'), 'lfc-interval': 0 },
      'valid-lifetime': net.leaseSeconds,
      'multi-threading': multiThreaded
        ? { 'enable-multi-threading': true, 'thread-pool-size': 0, 'packet-queue-size': 64 }
        : { 'enable-multi-threading': false },
      subnet4: [
        {
          id: 1,
          subnet: net.cidr,
          pools: [{ pool: `${net.poolStart} - ${net.poolEnd}` }],
          'option-data': [
            { name: 'routers', data: net.router },
            { name: 'domain-name-servers', data: net.dns },
            { name: 'domain-name', data: net.domain },
          ],
        },
      ],
      // Kea's default severity (INFO logs one line per allocated lease, as rackseed does); to a file in this run's
      // directory, so nothing of it depends on how fast this process reads a pipe.
      loggers: [{ name: 'kea-dhcp4', output_options: [{ output: path.join(dir, 'kea.log') }], severity: 'INFO' }],
    },
  };
}

export async function startKea(netns: Netns, ns: string, net: KeaNetwork, dir: string, multiThreaded: boolean): Promise<KeaProcess> {
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'kea-dhcp4.json');
  writeFileSync(conf, JSON.stringify(keaConfig(net, dir, multiThreaded), null, 2));
  const leaseFile = path.join(dir, 'leases.csv');
  const logFile = path.join(dir, 'kea.log');
  let output = '';
  // Pid and lock files default to /run/kea; each run keeps its own so nothing of the host's is touched.
  const env = { ...process.env, KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir };
  const child = netns.spawn(ns, 'kea-dhcp4', ['-c', conf], { env });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const log = (): string => {
    let file = '';
    try {
      file = readFileSync(logFile, 'utf8');
    } catch {
      // Not created yet.
    }
    return output + file;
  };
  const deadline = Date.now() + 20_000;
  // DHCP4_STARTED comes after the sockets are open.
  while (!/DHCP4_STARTED/.test(log())) {
    if (child.exitCode !== null) throw new Error(`kea-dhcp4 exited with ${child.exitCode}:\n${log()}`);
    if (Date.now() > deadline) {
      await netns.stop(child);
      throw new Error(`kea-dhcp4 did not start within 20 s:\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    leaseFile,
    leasesOnDisk() {
      const lines = readFileSync(leaseFile, 'utf8').split('\n').slice(1).filter(Boolean);
      return new Set(lines.map((l) => l.slice(0, l.indexOf(',')))).size;
    },
    log,
    stop: () => netns.stop(child),
  };
}
