import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { ObservedStore, StoredEvent } from '../../server/store/types.js';
import type { TestInitramfs } from './initramfs.js';
import { writeTinyImage } from './installer.js';
import type { ProvisioningLab } from './lab.js';
import type { RackseedProcess } from './rackseed-process.js';
import { waitFor } from './wait.js';

/** Inventory for the netboot tests: one group whose "installer" is the test initramfs, and the known VMs. */
export function netbootInventory(nodes: Array<{ name: string; mac: string; ip?: string }>): string {
  const entries = nodes.map((n) => `  - name: ${n.name}\n    mac: ${n.mac}\n${n.ip ? `    ip: ${n.ip}\n` : ''}    group: test\n`).join('');
  return `cluster:\n  name: e2e\ngroups:\n  test:\n    image: debian12\n    kernel_args: [console=ttyS0, panic=-1]\n    disk: { device: /dev/vda, partitions: [{ mount: /, size: rest, fs: ext4 }] }\nnodes:\n${entries}`;
}

/**
 * The group's image in the running server's catalog: the boot route sends a node to its installer only for an image
 * the catalog holds. The test initramfs never installs it; a tiny real image keeps the catalog and seeder honest.
 */
export async function catalogTestImage(lab: ProvisioningLab): Promise<void> {
  await writeTinyImage(path.join(lab.server.dir, 'data'), `http://${lab.serverIp}:8080`, 'debian12');
  lab.server.post('/images/rescan');
}

/** rackseed config lines that point provisioning at the test kernel and initramfs. */
export const TEST_PROVISIONING = 'provisioning:\n  kernel: test/vmlinuz\n  initrd: test/initrd.img\n';

/** Puts the test kernel and initramfs where the server serves them (<data_dir>/files/test/). */
export function installTestBootFiles(rs: RackseedProcess, initramfs: TestInitramfs): void {
  const dir = path.join(rs.dir, 'data', 'files', 'test');
  mkdirSync(dir, { recursive: true });
  copyFileSync(initramfs.kernel, path.join(dir, 'vmlinuz'));
  copyFileSync(initramfs.initrd, path.join(dir, 'initrd.img'));
}

/** Waits until the node's event log holds an event of `type` (and `stage`, for stage events). */
export function waitForEvent(store: ObservedStore, node: string, type: string, stage?: string, timeoutMs = 120_000): Promise<StoredEvent[]> {
  return waitFor(`${node}: ${type}${stage ? ` ${stage}` : ''}`, async () => {
    const events = await store.listEvents({ node });
    const hit = events.some((e) => e.event.type === type && (stage === undefined || (e.event.type === 'stage' && e.event.stage === stage)));
    return hit ? events : undefined;
  }, timeoutMs, 250);
}
