import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Netns } from './netns.js';
import { waitForOutput } from './process-output.js';

export interface KeaOptions {
  netns: Netns;
  ns: string;
  iface: string;
  /** e.g. 10.77.0.0/24 */
  subnet: string;
  /** e.g. "10.77.0.100 - 10.77.0.150" */
  pool: string;
  routers?: string;
  workDir: string;
  /** Keep leases in a file (Kea's memfile persistence) instead of memory only. */
  leaseFile?: string;
}

/** ISC Kea as a site's DHCP server in a test namespace; pid and lock files stay in workDir. */
export async function startKea(o: KeaOptions): Promise<ChildProcess> {
  const config = {
    Dhcp4: {
      'interfaces-config': { interfaces: [o.iface], 'dhcp-socket-type': 'raw' },
      'lease-database': o.leaseFile ? { type: 'memfile', persist: true, name: o.leaseFile, 'lfc-interval': 0 } : { type: 'memfile', persist: false },
      'valid-lifetime': 600,
      subnet4: [{ id: 1, subnet: o.subnet, pools: [{ pool: o.pool }], 'option-data': o.routers ? [{ name: 'routers', data: o.routers }] : [] }],
      loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stdout' }], severity: 'INFO' }],
    },
  };
  const file = join(o.workDir, 'kea-dhcp4.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  const kea = o.netns.spawn(o.ns, 'kea-dhcp4', ['-c', file], {
    env: { ...process.env, KEA_PIDFILE_DIR: o.workDir, KEA_LOCKFILE_DIR: o.workDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await waitForOutput(kea, /DHCP4_STARTED/, 15_000, 'kea-dhcp4');
  return kea;
}
