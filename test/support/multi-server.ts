import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { imagesDir } from '../../server/images/catalog.js';
import { Netns, type RunResult } from './netns.js';
import { startPostgres, type PostgresServer } from './postgres.js';
import { startRackseedProcess, type RackseedProcess } from './rackseed-process.js';
import { TSX_IMPORT } from './tsx.js';

/**
 * Two rackseed servers, each in its own network namespace on its own provisioning network, sharing one PostgreSQL
 * and one inventory file:
 *
 *   ns sa: bridge ba 10.81.0.1/24, rackseed "boot-a"     ns sb: bridge bb 10.82.0.1/24, rackseed "boot-b"
 *          veth xa 10.80.0.1/30  <-- routed link -->             veth xb 10.80.0.2/30
 *
 * Both namespaces forward, so a host on either network reaches both servers (torrent trackers and web seeds of the
 * other server). Both also serve 10.85.0.0/24 as a relayed subnet without a pool, routed onto their own bridge: the
 * subnet where the inventory's contested reservation lives. PostgreSQL runs in the host namespace; the servers reach
 * it over its Unix socket, which, being a file, is visible from every network namespace.
 */
export const SHARED_SUBNET = '10.85.0';

export interface Site {
  name: string;
  ns: string;
  bridge: string;
  /** First three octets of the site's own network. */
  net: string;
  serverIp: string;
  url: string;
  rs: RackseedProcess;
}

export interface MultiServerLab {
  netns: Netns;
  work: string;
  pg: PostgresServer;
  /** The database URL on loopback, for the test process. */
  databaseUrl: string;
  a: Site;
  b: Site;
  /** A host on a site's bridge: its own namespace and veth, `cidr` on it, routes to both servers through the site. */
  addHost(site: Site, suffix: string, opts: { cidr: string; mac?: string; gateway?: string }): { ns: string; ifname: string; port: string };
  /** GET (or POST) the admin API of a site from inside its namespace. */
  api<T>(site: Site, apiPath: string, method?: 'GET' | 'POST'): T;
  /** A command inside a namespace, without blocking the event loop (several peers run at once). */
  runAsync(ns: string, cmd: string, args: string[], timeoutMs?: number): Promise<RunResult>;
  /** The rackseed CLI, run inside a site's namespace against that site. */
  cli(site: Site, args: string[]): RunResult;
  token(site: Site): string;
  sql<T extends pg.QueryResultRow>(text: string, params?: unknown[]): Promise<T[]>;
  /** Copies an image directory from one site's data directory to the other's (same name, same bytes). */
  copyImage(from: Site, to: Site, name: string): void;
  teardown(): Promise<void>;
}

const CLI = path.resolve(import.meta.dirname, '../../server/cli/main.ts');

function siteConfig(name: string, bridge: string, net: string, inventory: string, databaseUrl: string): string {
  return `server:
  name: ${name}
inventory: ${inventory}
tftp:
  enabled: false
store:
  kind: postgres
  url: "${databaseUrl}"
  pool_size: 5
torrent:
  announce_interval_seconds: 5
  peer_ttl_seconds: 30
  seeder_restart_seconds: 3600
dhcp:
  mode: full
  interface: ${bridge}
  server_ip: ${net}.1
  lease_seconds: 3600
  subnets:
    - cidr: ${net}.0/24
      pool: { start: ${net}.100, end: ${net}.250 }
      routers: [${net}.1]
    - cidr: ${SHARED_SUBNET}.0/24
`;
}

export async function startMultiServerLab(opts: { inventory: string }): Promise<MultiServerLab> {
  const netns = new Netns();
  const work = mkdtempSync(path.join(tmpdir(), 'rackseed-multi-'));
  let pgServer: PostgresServer | undefined;
  const sites: Site[] = [];
  let hosts = 0;
  const teardown = async () => {
    for (const s of sites) await s.rs.stop().catch(() => undefined);
    netns.cleanup();
    await pgServer?.stop();
    rmSync(work, { recursive: true, force: true });
  };
  try {
    pgServer = await startPostgres();
    const databaseUrl = await pgServer.createDatabase('rackseed');
    const inventory = path.join(work, 'inventory.yaml');
    writeFileSync(inventory, opts.inventory);

    const layout = [
      { name: 'boot-a', suffix: 'a', net: '10.81.0', link: '10.80.0.1', peer: '10.80.0.2', otherNet: '10.82.0' },
      { name: 'boot-b', suffix: 'b', net: '10.82.0', link: '10.80.0.2', peer: '10.80.0.1', otherNet: '10.81.0' },
    ] as const;
    const made = layout.map((l) => {
      const ns = netns.addNamespace(`s${l.suffix}`);
      const bridge = netns.addBridge(ns, `b${l.suffix}`);
      netns.addAddress(ns, bridge, `${l.net}.1/24`);
      must(netns.run(ns, 'ip', ['route', 'add', `${SHARED_SUBNET}.0/24`, 'dev', bridge]));
      must(netns.run(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']));
      return { ...l, ns, bridge };
    });
    const [siteA, siteB] = made as [(typeof made)[number], (typeof made)[number]];
    const [xa, xb] = netns.addVeth(siteA.ns, 'xa', siteB.ns, 'xb');
    netns.addAddress(siteA.ns, xa, '10.80.0.1/30');
    netns.addAddress(siteB.ns, xb, '10.80.0.2/30');
    for (const m of made) must(netns.run(m.ns, 'ip', ['route', 'add', `${m.otherNet}.0/24`, 'via', m.peer]));

    // Both at once: they migrate the empty database and sync the inventory into it concurrently, as a fleet would.
    const processes = await Promise.all(
      made.map((m) =>
        startRackseedProcess({
          netns,
          ns: m.ns,
          httpAddress: `${m.net}.1`,
          config: siteConfig(m.name, m.bridge, m.net, inventory, pgServer!.socketUrl('rackseed')),
          inventory: opts.inventory,
          waitFor: [/"msg":"DHCP listening"/],
        }),
      ),
    );
    made.forEach((m, i) => sites.push({ name: m.name, ns: m.ns, bridge: m.bridge, net: m.net, serverIp: `${m.net}.1`, url: `http://${m.net}.1:8080`, rs: processes[i]! }));

    const token = (site: Site) => readFileSync(path.join(site.rs.dir, 'data', 'admin-token'), 'utf8').trim();
    return {
      netns,
      work,
      pg: pgServer,
      databaseUrl,
      a: sites[0]!,
      b: sites[1]!,
      addHost(site, suffix, o) {
        const ns = netns.addNamespace(`h${suffix}`);
        const n = (hosts++).toString(36);
        const [ifname, port] = netns.addVeth(ns, `h${n}e`, site.ns, `h${n}p`, { ...(o.mac ? { mac: o.mac } : {}), masterB: site.bridge });
        netns.addAddress(ns, ifname, o.cidr);
        if (!o.cidr.startsWith(`${site.net}.`)) must(netns.run(ns, 'ip', ['route', 'add', `${site.net}.0/24`, 'dev', ifname]));
        must(netns.run(ns, 'ip', ['route', 'add', 'default', 'via', o.gateway ?? site.serverIp]));
        return { ns, ifname, port };
      },
      api<T>(site: Site, apiPath: string, method: 'GET' | 'POST' = 'GET'): T {
        const r = netns.run(site.ns, 'curl', ['-sf', '-X', method, '-H', `Authorization: Bearer ${token(site)}`, `${site.url}/api/v1${apiPath}`]);
        if (r.status !== 0) throw new Error(`${method} ${apiPath} on ${site.name} failed (${r.status}): ${r.stderr}`);
        return JSON.parse(r.stdout || 'null') as T;
      },
      runAsync(ns, cmd, args, timeoutMs = 120_000) {
        return new Promise((resolve) => {
          const child = netns.spawn(ns, cmd, args);
          let stdout = '';
          let stderr = '';
          child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
          child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
          const timer = setTimeout(() => child.pid !== undefined && netns.kill(child.pid, 'SIGKILL'), timeoutMs);
          // 'close', not 'exit': 'exit' can come before the last output is read, and a loaded machine then hands the
          // caller an empty stdout (seen once in CI: perfdhcp's statistics missing from a run that had printed them).
          child.once('close', (status) => {
            clearTimeout(timer);
            resolve({ status, stdout, stderr });
          });
        });
      },
      cli(site, args) {
        return netns.run(site.ns, process.execPath, ['--import', TSX_IMPORT, CLI, '--server', site.url, '--token', token(site), ...args], 60_000);
      },
      token,
      async sql<T extends pg.QueryResultRow>(text: string, params: unknown[] = []) {
        const client = new pg.Client({ connectionString: databaseUrl });
        await client.connect();
        try {
          return (await client.query<T>(text, params)).rows;
        } finally {
          await client.end();
        }
      },
      copyImage(from, to, name) {
        cpSync(path.join(imagesDir(path.join(from.rs.dir, 'data')), name), path.join(imagesDir(path.join(to.rs.dir, 'data')), name), { recursive: true });
      },
      teardown,
    };
  } catch (e) {
    await teardown();
    throw e;
  }
}

function must(r: RunResult): void {
  if (r.status !== 0) throw new Error(r.stderr || `exit ${r.status}`);
}
