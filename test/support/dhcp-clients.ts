import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Netns } from './netns.js';

/** KEY=value lines (what the clients' scripts saw in their environment) as an object. */
function envFile(file: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/**
 * ISC dhclient inside `ns`, once, returning the environment its script got on BOUND (new_ip_address,
 * new_filename, ...). `vendorClass` makes it look like a PXE client (option 60).
 */
export function runDhclient(netns: Netns, ns: string, ifname: string, workDir: string, vendorClass?: string): Record<string, string> {
  const dir = mkdtempSync(path.join(workDir, 'dhclient-'));
  const script = path.join(dir, 'script.sh');
  const out = path.join(dir, 'env');
  // dhclient's default script would rewrite the host's resolv.conf; this one only records what it was given.
  writeFileSync(script, `#!/bin/sh\ncase "$reason" in BOUND|RENEW|REBOOT) env > ${out}.tmp && mv ${out}.tmp ${out};; esac\nexit 0\n`);
  chmodSync(script, 0o755);
  const conf = path.join(dir, 'dhclient.conf');
  writeFileSync(conf, vendorClass ? `send vendor-class-identifier "${vendorClass}";\n` : '');
  // -1: try once; without -d dhclient daemonizes after binding, and its pidfile says which PID to stop.
  const pidfile = path.join(dir, 'pid');
  const r = netns.run(ns, 'dhclient', ['-1', '-cf', conf, '-sf', script, '-lf', path.join(dir, 'leases'), '-pf', pidfile, ifname], 60_000);
  // The daemon writes its pidfile after the parent (the PID run() waited for) has exited: wait for it when the
  // client bound, or the daemon outlives the test, renewing on an interface that is gone.
  const deadline = Date.now() + 5_000;
  while (existsSync(out) && !existsSync(pidfile) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  if (existsSync(pidfile)) {
    const pid = Number(readFileSync(pidfile, 'utf8').trim());
    netns.track(pid);
    netns.kill(pid, 'SIGKILL');
  }
  if (!existsSync(out)) throw new Error(`dhclient got no lease (exit ${r.status}): ${r.stderr}`);
  return envFile(out);
}

/** busybox udhcpc inside `ns`, once (-n -q), returning the environment its script got on "bound" (ip, boot_file, siaddr, ...). */
export function runUdhcpc(netns: Netns, ns: string, ifname: string, workDir: string, extra: readonly string[] = []): Record<string, string> {
  const dir = mkdtempSync(path.join(workDir, 'udhcpc-'));
  const script = path.join(dir, 'script.sh');
  const out = path.join(dir, 'env');
  writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && env > ${out}\nexit 0\n`);
  chmodSync(script, 0o755);
  const r = netns.run(ns, 'busybox', ['udhcpc', '-i', ifname, '-n', '-q', '-t', '5', '-T', '1', '-s', script, ...extra], 60_000);
  if (!existsSync(out)) throw new Error(`udhcpc got no lease (exit ${r.status}): ${r.stdout}${r.stderr}`);
  return envFile(out);
}
