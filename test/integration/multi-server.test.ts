import { writeStandInInstaller } from '../support/installer.js';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DhcpStats } from '../../server/dhcp/stats.js';
import { readTorrent } from '../../server/images/torrent.js';
import type { FleetStatus } from '../../server/services/node-view.js';
import { startMultiServerLab, SHARED_SUBNET, type MultiServerLab, type Site } from '../support/multi-server.js';
import { processAlive } from '../support/process-output.js';
import { sha256File, startNodeDownload, writeTestImage, type NodeDownload, type TestImage } from '../support/swarm.js';
import { waitFor } from '../support/wait.js';

/**
 * Two rackseed servers sharing one PostgreSQL (test/support/multi-server.ts has the network): DHCP on both at once
 * with one reservation both try to hand out, a node's lifecycle recorded through one server and seen through the
 * other (API, CLI, dashboard stream), torrents naming both servers, and a download that outlives one server's death.
 */
const TWIN_A = '52:54:00:77:00:01';
const TWIN_B = '52:54:00:77:00:02';
const TWIN_IP = `${SHARED_SUBNET}.50`;
const NODE_MAC = '52:54:00:88:00:01';
/** rack-b-01's reservation on site B's network: in full DHCP mode its installer reports only from there. */
const NODE_IP = '10.82.0.77';
const IMAGE_SIZE = 24 * 1024 * 1024;

// One node with two MACs (say, a NIC cabled into each rack's network) and one reserved address in the subnet both
// servers serve: each server would hand that address to "its" MAC.
const INVENTORY = `cluster:
  name: multi
groups:
  compute:
    image: mini
    disk: { device: /dev/vda, partitions: [{ mount: /, size: rest, fs: ext4 }] }
nodes:
  - name: twin
    macs: [${TWIN_A}, ${TWIN_B}]
    ip: ${TWIN_IP}
    group: compute
  - name: rack-b-01
    mac: ${NODE_MAC}
    ip: ${NODE_IP}
    group: compute
`;

let lab: MultiServerLab;
let image: TestImage | undefined;

/**
 * The group's image, in both servers' catalogues, and an installer beside it (a server hands out a provisioning script
 * only for an image it holds, and only when its installer is built).
 */
async function catalogueImage(): Promise<TestImage> {
  if (!image) {
    image = await writeTestImage(path.join(lab.a.rs.dir, 'data'), { name: 'mini', size: IMAGE_SIZE, publicUrl: lab.a.url });
    lab.copyImage(lab.a, lab.b, 'mini');
    for (const site of [lab.a, lab.b]) writeStandInInstaller(path.join(site.rs.dir, 'data'));
    for (const site of [lab.a, lab.b]) lab.api(site, '/images/rescan', 'POST');
  }
  return image;
}

interface LeaseRow {
  ip: string;
  mac: string;
  state: string;
  server: string | null;
}

interface SwarmView {
  seeder: { running: boolean; pid?: number };
  images: Array<{ name: string; peers: Array<{ ip: string; complete: boolean }>; seeder: { state: string } | null }>;
}

/** Every `lease bound` line a server logged (its ACKs), as [ip, mac]. */
function acksOf(site: Site): Array<[string, string]> {
  return site.rs
    .log()
    .split('\n')
    .filter((l) => l.includes('"msg":"lease bound"'))
    .map((l) => JSON.parse(l) as { ip: string; mac: string })
    .map((l) => [l.ip, l.mac]);
}

function perfdhcpReceived(out: string): number[] {
  return [...out.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
}

beforeAll(async () => {
  lab = await startMultiServerLab({ inventory: INVENTORY });
}, 120_000);

afterAll(async () => {
  await lab?.teardown();
});

describe('several rackseed servers over one PostgreSQL', () => {
  it('both servers are registered in the shared store, each with its own name and URL', async () => {
    const rows = await lab.sql<{ name: string; public_url: string; tracker: boolean }>('SELECT name, public_url, tracker FROM servers ORDER BY name');
    expect(rows).toEqual([
      { name: 'boot-a', public_url: lab.a.url, tracker: true },
      { name: 'boot-b', public_url: lab.b.url, tracker: true },
    ]);
  });

  it('perfdhcp against both at once plus a reservation both try to hand out: no address is ever held twice', async () => {
    const loadA = lab.addHost(lab.a, 'pa', { cidr: `${lab.a.net}.2/24` });
    const loadB = lab.addHost(lab.b, 'pb', { cidr: `${lab.b.net}.2/24` });
    // The twins relay from the shared subnet (giaddr in it), so each server answers from that subnet's reservation.
    const twinA = lab.addHost(lab.a, 'ta', { cidr: `${SHARED_SUBNET}.1/24` });
    const twinB = lab.addHost(lab.b, 'tb', { cidr: `${SHARED_SUBNET}.1/24` });
    const perf = (host: { ns: string; ifname: string }, site: Site, extra: string[]) =>
      lab.runAsync(host.ns, 'perfdhcp', ['-4', '-l', host.ifname, '-W', '2000000', ...extra, site.serverIp], 120_000);
    const [ra, rb, ta, tb] = await Promise.all([
      perf(loadA, lab.a, ['-r', '50', '-R', '100', '-n', '100', '-b', 'mac=02:0a:00:00:00:00']),
      perf(loadB, lab.b, ['-r', '50', '-R', '100', '-n', '100', '-b', 'mac=02:0b:00:00:00:00']),
      perf(twinA, lab.a, ['-r', '1', '-R', '1', '-n', '1', '-b', `mac=${TWIN_A}`]),
      perf(twinB, lab.b, ['-r', '1', '-R', '1', '-n', '1', '-b', `mac=${TWIN_B}`]),
    ]);
    for (const r of [ra, rb]) {
      const received = perfdhcpReceived(r.stdout + r.stderr);
      expect(received.length, r.stdout + r.stderr).toBe(2);
      // Most exchanges completed on both servers at once. perfdhcp counts only replies within its wait window, and
      // on a loaded 2-core machine (QEMU tests run beside this one) some arrive late: the floor is for liveness,
      // the invariants below are the point.
      expect(received[0]).toBeGreaterThanOrEqual(50);
      expect(received[1]).toBeGreaterThanOrEqual(50);
    }
    // Both twins were offered the reservation (each server saw it free), so both got as far as a REQUEST.
    for (const r of [ta, tb]) expect(perfdhcpReceived(r.stdout + r.stderr)[0], r.stdout + r.stderr).toBe(1);

    const active = await lab.sql<LeaseRow>("SELECT ip, mac, state, server FROM leases WHERE state IN ('offered', 'bound') ORDER BY ip");
    // No MAC holds two addresses (the address is the primary key, so no address has two rows either).
    expect(new Set(active.map((l) => l.mac)).size).toBe(active.length);
    // The same liveness floor as above: under load fewer of the 100 exchanges complete (a floor of 90 failed with 63
    // while QEMU tests ran beside it), and how many is a matter of timing, not of correctness.
    expect(active.filter((l) => l.server === 'boot-a' && l.ip.startsWith(`${lab.a.net}.`)).length).toBeGreaterThanOrEqual(50);
    expect(active.filter((l) => l.server === 'boot-b' && l.ip.startsWith(`${lab.b.net}.`)).length).toBeGreaterThanOrEqual(50);
    expect(active.filter((l) => l.server === 'boot-a' && !l.ip.startsWith(`${lab.a.net}.`) && l.ip !== TWIN_IP)).toEqual([]);

    // The contested reservation: one lease, to one of the node's MACs, through the server that ACKed it.
    const twin = active.filter((l) => l.ip === TWIN_IP);
    expect(twin).toHaveLength(1);
    const winner = twin[0]!;
    expect([TWIN_A, TWIN_B]).toContain(winner.mac);
    expect(winner.server).toBe(winner.mac === TWIN_A ? 'boot-a' : 'boot-b');

    // What the clients were told: across both servers' ACKs, no address went to two MACs, and the reservation was
    // ACKed exactly once; the other server's claim was refused by the store and NAKed.
    const acks = [...acksOf(lab.a), ...acksOf(lab.b)];
    const macsByIp = new Map<string, Set<string>>();
    for (const [ip, mac] of acks) macsByIp.set(ip, (macsByIp.get(ip) ?? new Set()).add(mac));
    expect([...macsByIp].filter(([, macs]) => macs.size > 1)).toEqual([]);
    expect(acks.filter(([ip]) => ip === TWIN_IP)).toEqual([[TWIN_IP, winner.mac]]);
    const stats = [lab.a, lab.b].map((s) => lab.api<{ dhcp: DhcpStats }>(s, '/netboot/stats').dhcp);
    expect(stats.map((s) => s.claimsRefused).sort()).toEqual([0, 1]);
    const loser = winner.mac === TWIN_A ? 1 : 0;
    expect(stats[loser]!.claimsRefused).toBe(1);
  }, 180_000);

  it('a node booted and reporting through server B shows, with its events, on server A: API, CLI and live dashboard', async () => {
    // The dashboard stream on A opens first, so what arrives is live, not history.
    const jar = path.join(lab.work, 'ui-cookies');
    const login = lab.netns.run(lab.a.ns, 'curl', ['-sf', '-o', '/dev/null', '-c', jar, '--data-urlencode', `token=${lab.token(lab.a)}`, `${lab.a.url}/ui/login`]);
    expect(login.status, login.stderr).toBe(0);
    let stream = '';
    const sse = lab.netns.spawn(lab.a.ns, 'curl', ['-sN', '-b', jar, '--max-time', '60', `${lab.a.url}/ui/events`]);
    sse.stdout?.on('data', (d: Buffer) => (stream += d.toString()));
    try {
      await waitFor('the dashboard stream on A to open', () => stream.includes('retry: 2000'), 15_000, 100);

      // The node's firmware asks B for its boot script (B records provision_started), then its installer reports.
      await catalogueImage();
      const script = lab.netns.run(lab.b.ns, 'curl', ['-sf', `${lab.b.url}/ipxe/machine?mac=${NODE_MAC}`]);
      expect(script.stdout).toMatch(/rackseed\.node=rack-b-01/);
      const token = /rackseed\.token=([A-Za-z0-9._~%-]+)/.exec(script.stdout)?.[1];
      expect(token).toBeDefined();
      const installer = lab.addHost(lab.b, 'rb', { cidr: `${NODE_IP}/24` });
      const report = lab.netns.run(installer.ns, 'curl', [
        '-sf', '-X', 'POST', '-H', `Authorization: Bearer ${decodeURIComponent(token!)}`, '-H', 'content-type: application/json',
        '--data', JSON.stringify({ stage: 'download', detail: { bytes: 1024, total: 4096 } }), `${lab.b.url}/node/v1/report`,
      ]);
      expect(report.status, report.stderr + report.stdout).toBe(0);

      const shown = lab.api<{ node: { state: string }; events: Array<{ event: { type: string; stage?: string } }> }>(lab.a, '/nodes/rack-b-01');
      expect(shown.node.state).toBe('provisioning');
      expect(shown.events.map((e) => e.event.type)).toEqual(expect.arrayContaining(['assigned', 'provision_started', 'stage']));
      expect(shown.events.at(-1)!.event).toMatchObject({ type: 'stage', stage: 'download' });

      const status = lab.cli(lab.a, ['--json', 'status']);
      expect(status.status, status.stderr).toBe(0);
      const fleet = JSON.parse(status.stdout) as FleetStatus;
      expect(fleet.server).toBe('boot-a');
      expect(fleet.byState.provisioning).toBe(1);

      const nodeEvents = () =>
        stream
          .split('\n\n')
          .filter((block) => block.includes('event: node'))
          .map((block) => JSON.parse(/^data: (.*)$/m.exec(block)![1]!) as { node: string; view?: { state: string }; event: { type: string } })
          .filter((e) => e.node === 'rack-b-01');
      const live = await waitFor('A\'s dashboard to stream both events recorded through B', () => {
        const types = nodeEvents().map((e) => e.event.type);
        return types.includes('provision_started') && types.includes('stage') ? nodeEvents() : undefined;
      }, 15_000, 200);
      expect(live.map((e) => e.event.type)).toEqual(['provision_started', 'stage']);
      expect(live.at(-1)!.view?.state).toBe('provisioning');
    } finally {
      await lab.netns.stop(sse);
    }
  }, 120_000);

  it('serves a torrent naming both servers\' trackers and web seeds, with the catalogue\'s info-hash', async () => {
    const image = await catalogueImage();
    for (const site of [lab.a, lab.b]) {
      await waitFor(`${site.name} seeding mini`, () => lab.api<SwarmView>(site, '/swarm').images.find((i) => i.name === 'mini')?.seeder?.state === 'seeding', 30_000, 200);
    }
    const file = path.join(lab.work, 'mini.torrent');
    // B published its image list on its rescan (registry heartbeat on catalogue change): A's torrent names it at once.
    const fetched = await waitFor('A\'s torrent to name B', async () => {
      const r = lab.netns.run(lab.a.ns, 'curl', ['-sf', '-o', file, image.torrentUrl]);
      if (r.status !== 0) throw new Error(r.stderr);
      const t = await readTorrent(readFileSync(file));
      return t.urlList.length === 2 ? t : undefined;
    }, 15_000, 300);
    const bytes = readFileSync(file).toString('latin1');
    const catalogued = lab.api<{ image: { torrent: { infoHash: string } } }>(lab.a, '/images/mini').image.torrent.infoHash;
    expect(fetched.infoHash).toBe(image.infoHash);
    expect(fetched.infoHash).toBe(catalogued);
    expect(fetched.private).toBe(true);
    const bstr = (s: string) => `${s.length}:${s}`;
    // Tiers: A's own tracker first, B's as the fallback tier.
    expect(bytes).toContain(`13:announce-listll${bstr(`${lab.a.url}/announce`)}el${bstr(`${lab.b.url}/announce`)}ee`);
    expect(fetched.urlList).toEqual([`${lab.a.url}/files/images/mini/rootfs.tar.zst`, `${lab.b.url}/files/images/mini/rootfs.tar.zst`]);
  }, 90_000);

  it('a download started from A completes from B after A\'s process is killed mid-transfer', async () => {
    const image = await catalogueImage();
    const node = lab.addHost(lab.a, 'n1', { cidr: `${lab.a.net}.30/24` });
    // A slow link, so the transfer is still running when A dies (tbf; no netem on this machine).
    const tc = lab.netns.run(node.ns, 'tc', ['qdisc', 'add', 'dev', node.ifname, 'root', 'tbf', 'rate', '12mbit', 'burst', '32k', 'latency', '50ms']);
    expect(tc.status, tc.stderr).toBe(0);
    const tcIn = lab.netns.run(lab.a.ns, 'tc', ['qdisc', 'add', 'dev', node.port, 'root', 'tbf', 'rate', '12mbit', 'burst', '32k', 'latency', '50ms']);
    expect(tcIn.status, tcIn.stderr).toBe(0);
    const seederA = lab.api<SwarmView>(lab.a, '/swarm').seeder.pid;
    expect(seederA).toBeGreaterThan(0);

    let d: NodeDownload | undefined;
    try {
      d = startNodeDownload(lab.netns, node.ns, image, path.join(lab.work, 'node-n1'));
      const started = d;
      await waitFor('the node to have part of the image', () => {
        if (started.child.exitCode !== null) throw new Error(`aria2c exited early: ${started.output()}`);
        try {
          return statSync(started.file).blocks * 512 >= 2 * 1024 * 1024;
        } catch {
          return false;
        }
      }, 60_000, 100);
      expect(d.done()).toBe(false);

      await lab.a.rs.kill9();
      // Its seeder dies with it (IPC disconnect): nothing of A serves pieces any more.
      await waitFor('A\'s seeder to exit', () => !processAlive(seederA!), 10_000, 100);
      const down = lab.netns.run(node.ns, 'curl', ['-s', '-o', '/dev/null', '--max-time', '3', `${lab.a.url}/healthz`]);
      expect(down.status).not.toBe(0);

      await waitFor('the download to complete', () => {
        if (started.child.exitCode !== null && !started.done()) throw new Error(`aria2c exited with ${started.child.exitCode}: ${started.output()}`);
        return started.done();
      }, 120_000, 200);
      expect(await sha256File(d.file)).toBe(image.sha256);
      // With A's tracker gone, the node moved to B's tier: B's tracker knows it, complete. (The pieces may also have
      // come from B's seeder through A's tracker's earlier peer list: the copied torrent on B names A's tracker too, so
      // B's seeder announced there. This check is what needs the rewritten torrent's fallback tier.)
      await waitFor('B\'s tracker to list the node as complete', () =>
        lab.api<SwarmView>(lab.b, '/swarm').images.find((i) => i.name === 'mini')?.peers.some((p) => p.ip === `${lab.a.net}.30` && p.complete), 30_000, 500);
    } finally {
      if (d) await lab.netns.stop(d.child);
    }
  }, 240_000);
});
