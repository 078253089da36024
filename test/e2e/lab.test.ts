import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { imagesDir } from '../../server/images/catalog.js';
import { LAB_IMAGE_NAME } from '../../server/lab/artefacts.js';
import { labUp, type RunningLab } from '../../server/lab/lab.js';
import { LAB_STATE_FILE } from '../../server/lab/state-file.js';
import { processStartTicks } from '../../server/util/process-identity.js';
import type { StoredReadiness } from '../../server/services/readiness-service.js';
import { openStore } from '../../server/store/index.js';
import { labDiagnostics } from '../support/lab-diagnostics.js';
import { requireBinary } from '../support/process-output.js';

/**
 * The virtual lab end to end (`rackseed lab up`, driven through its module so teardown is certain): three QEMU
 * machines with blank disks PXE boot from the lab's rackseed, install the lab image over the swarm, reboot into it,
 * are converged into one Slurm controller and two Slurm compute nodes, and turn ready; the dashboard shows them;
 * `down` leaves no namespace, bridge, tap or QEMU process behind. This is also the images issue's end-to-end test:
 * several machines installing one image at once over the swarm, every stage recorded, booting the installed OS.
 */

/** What the installer reports, in order, on its way from a blank disk to a reboot. */
const INSTALL_STAGES = ['plan', 'partition', 'mkfs', 'download', 'verify', 'unpack', 'identity'];

let dir: string;
let lab: RunningLab | undefined;
const lines: string[] = [];

beforeAll(async () => {
  requireBinary('qemu-system-x86_64', 'apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils ipxe-qemu ovmf');
  requireBinary('debootstrap', 'apt-get install -y --no-install-recommends debootstrap zstd');
  dir = mkdtempSync(path.join(tmpdir(), 'rackseed-lab-e2e-'));
  // The first run builds the lab image and the installer (several minutes); later runs take them from the cache.
  lab = await labUp({
    dir,
    port: 0,
    say: (line) => {
      lines.push(line);
      console.log(`lab: ${line}`);
    },
  });
}, 1_800_000);

afterAll(async () => {
  await lab?.down();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function namespacesWithPrefix(prefix: string): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  return out.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(prefix));
}

function linksWithPrefix(prefix: string): string[] {
  const out = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '';
  return out.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter((n) => n.startsWith(prefix));
}

describe('virtual lab', () => {
  it('three machines install over the swarm, converge into a Slurm cluster and turn ready, shown on the dashboard', async () => {
    const running = lab!;
    const store = await openStore({ kind: 'sqlite', path: path.join(running.dir, 'data', 'rackseed.db') });
    onTestFinished(() => store.close());
    const t0 = Date.now();
    try {
      await running.waitUntilReady(900_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await labDiagnostics(running)}`);
    }
    console.log(`lab: all machines ready after ${((Date.now() - t0) / 1000).toFixed(0)} s`);

    // The stored lifecycle of every machine went the whole way, and the newcomer's console said so.
    for (const m of running.machines) {
      const types = (await store.listEvents({ node: m.name })).map((e) => e.event.type);
      const order = (['provision_started', 'installed', 'configure_started', 'ready'] as const).map((t) => types.indexOf(t));
      expect(order.every((i) => i >= 0), `${m.name}: ${types.join(' ')}`).toBe(true);
      expect([...order].sort((a, b) => a - b), `${m.name}: ${types.join(' ')}`).toEqual(order);
      expect(types.at(-1), m.name).toBe('ready');
      // What is on its disk, as the installer verified it: the image whose kernel every later boot is given.
      const sha256 = JSON.parse(readFileSync(path.join(imagesDir(path.join(running.dir, 'data')), LAB_IMAGE_NAME, 'manifest.json'), 'utf8')).artefacts.rootfs.sha256;
      expect((await store.getNode(m.name))?.installedImage, m.name).toEqual({ name: LAB_IMAGE_NAME, sha256 });
      for (const what of ['powered on', 'ready']) expect(lines.some((l) => l.startsWith(`${m.name}: ${what}`)), `${m.name} ${what}`).toBe(true);
    }

    // The evidence behind "ready": both compute nodes idle in the controller's view, the controller up.
    const { nodes } = await running.api.get<{ nodes: StoredReadiness[] }>('/readiness');
    const byName = new Map(nodes.map((n) => [n.node, n]));
    for (const name of ['lab-c01', 'lab-c02']) {
      const state = byName.get(name)?.run?.evidence.find((e) => e.check === 'slurm.node_state');
      expect(state, name).toMatchObject({ pass: true });
      expect(state?.seen.toLowerCase(), name).toMatch(/^idle/);
    }
    const controller = byName.get('lab-head')?.run?.evidence.filter((e) => e.role === 'slurm-controller') ?? [];
    expect(controller.map((e) => [e.check, e.pass])).toEqual([
      ['slurm.slurmctld', true],
      ['slurm.ping', true],
    ]);

    // Every install stage was reported, and the install really came over the swarm: the last download report is
    // the finished file as aria2c counted it. (Logging in over SSH with the pinned host key is the base.ssh check
    // that every ready node passed; a wrong pin is refused in test/integration/state-transport.test.ts.)
    for (const m of running.machines) {
      const events = await store.listEvents({ node: m.name });
      const stages = events.flatMap((e) => (e.event.type === 'stage' ? [e.event.stage] : []));
      for (const s of INSTALL_STAGES) expect(stages, `${m.name} ${s}`).toContain(s);
      const downloads = events.flatMap((e) => (e.event.type === 'stage' && e.event.stage === 'download' ? [e.event.detail ?? {}] : []));
      expect(downloads.at(-1), m.name).toMatchObject({ source: 'swarm', bytes: downloads.at(-1)?.['size'] });
    }

    // The dashboard, through the host's relay: log in with the admin token, and the fleet page lists the machines.
    const login = await fetch(`${running.url}/ui/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: running.token, next: '/ui/' }).toString(),
      redirect: 'manual',
    });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')?.split(';')[0];
    expect(cookie).toBeTruthy();
    const page = await fetch(`${running.url}/ui/`, { headers: { cookie: cookie! } });
    expect(page.status).toBe(200);
    const html = await page.text();
    for (const m of running.machines) expect(html).toContain(m.name);
  }, 1_000_000);

  it('down stops the machines, the server and the relay, and removes every namespace, bridge and tap of the lab', async () => {
    const running = lab!;
    const pids = [...running.vms.map((vm) => vm.pid), running.server.pid];
    expect(namespacesWithPrefix(running.prefix).length).toBeGreaterThan(0);
    await running.down();
    expect(namespacesWithPrefix(running.prefix)).toEqual([]);
    expect(linksWithPrefix(running.prefix)).toEqual([]);
    for (const pid of pids) expect(processStartTicks(pid), `pid ${pid}`).toBeUndefined();
    expect(existsSync(path.join(dir, LAB_STATE_FILE))).toBe(false);
  }, 120_000);
});
