import { readFileSync } from 'node:fs';
import { BlockList, isIP, isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { RackseedError } from './model/errors.js';
import { addressesNeverLeased, formatIpv4, inSubnet, parseCidr, parseIpv4, type Ipv4Subnet } from './model/ipv4.js';
import type { StoreConfig } from './store/index.js';
import { strict } from './util/strict-object.js';
import type { SourceLocator } from './util/source-locator.js';
import { parseYamlDocument, yamlToJs } from './util/yaml-document.js';
import { parseAt } from './util/zod-located.js';

/**
 * rackseed.yaml: validated once at start. Every key has a safe default: HTTP and TFTP on, DHCP off until a
 * provisioning interface is named, data in ./data. Relative paths are relative to the config file.
 */

// 0 asks the OS for any free port (tests, side-by-side servers).
const port = z.number().int().min(0).max(65535);
const ipv4 = z.string().refine((s) => parseIpv4(s) !== undefined, 'expected an IPv4 address');

// An address this host has (or 0.0.0.0 / ::): a host name would be resolved at bind time, and a typo found late.
/** dhcp.mode as it takes effect: given, else off until an interface is named, then proxy (the safe mode). */
const effectiveDhcpMode = (d: { mode?: 'off' | 'proxy' | 'full' | undefined; interface?: string | undefined }): 'off' | 'proxy' | 'full' =>
  d.mode ?? (d.interface ? 'proxy' : 'off');

const PROXY_KEYWORDS = new Set(['loopback', 'linklocal', 'uniquelocal']);
/** An address, a subnet of at least one bit (a /0 is everyone), or a proxy-addr keyword. */
function isProxyAddress(s: string): boolean {
  if (PROXY_KEYWORDS.has(s) || isIP(s) !== 0) return true;
  const [address, bits, ...rest] = s.split('/');
  if (rest.length > 0 || address === undefined || bits === undefined || !/^\d{1,3}$/.test(bits)) return false;
  const family = isIP(address);
  return family !== 0 && Number(bits) >= 1 && Number(bits) <= (family === 4 ? 32 : 128);
}

/** proxy-addr's meaning of the keywords. */
const PROXY_KEYWORD_SUBNETS: Record<string, Array<[string, number, 'ipv4' | 'ipv6']>> = {
  loopback: [['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']],
  linklocal: [['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']],
  uniquelocal: [['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4'], ['fc00::', 7, 'ipv6']],
};

/**
 * Whether a trust_proxy range (not a single named host) holds addresses of the node subnet `net`. IPv6 ranges count
 * too: Express matches an IPv4 client against them in its mapped form (::ffff:10.0.0.0/104 is 10.0.0.0/8).
 */
function trustCovers(entry: string, net: Ipv4Subnet): boolean {
  const list = new BlockList();
  let inside: number | undefined;
  const keyword = PROXY_KEYWORD_SUBNETS[entry];
  if (keyword) for (const [address, prefix, type] of keyword) list.addSubnet(address, prefix, type);
  else {
    const [address = '', bits] = entry.split('/');
    const family = isIP(address);
    const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
    if (prefix === (family === 4 ? 32 : 128)) return false;
    list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
    inside = parseIpv4(family === 4 ? address : (/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? ''));
  }
  const last = (net.network | ~net.mask) >>> 0;
  return list.check(formatIpv4(net.network), 'ipv4') || list.check(formatIpv4(last), 'ipv4') || (inside !== undefined && inSubnet(inside, net));
}

const listenAddress = z.string().refine((s) => isIP(s) !== 0, 'expected an IPv4 or IPv6 address of this host, 0.0.0.0 or ::');

const httpSchema = strict({
    enabled: z.boolean().default(true),
    listen: listenAddress.default('0.0.0.0'),
    port: port.default(8080),
    /** The base URL nodes use to reach this server; defaults to http://<dhcp.server_ip or listen>:<port>. */
    public_url: z.url({ protocol: /^https?$/ }).optional(),
    /**
     * Reverse proxies in front of this server (addresses, subnets, or loopback / linklocal / uniquelocal) whose
     * X-Forwarded-For and X-Forwarded-Proto are believed: the client's address, and https for the dashboard cookie's
     * Secure flag. Never "everyone": anybody could then claim a node's address.
     */
    trust_proxy: z.array(z.string().refine(isProxyAddress, 'expected an address, a subnet (10.0.0.0/24, fd00::/8) or one of loopback, linklocal, uniquelocal')).default([]),
  })
  .prefault({});

const tftpSchema = strict({
    enabled: z.boolean().default(true),
    listen: listenAddress.default('0.0.0.0'),
    port: port.default(69),
    root: z.string().default('/usr/lib/ipxe'),
    /** Transfers at once (each holds a socket, an open file and a buffer), in all and per client address. */
    max_transfers: z.number().int().min(1).max(100_000).default(512),
    max_transfers_per_client: z.number().int().min(1).max(1000).default(16),
  })
  .prefault({});

const subnetSchema = strict({
  /** The subnet, e.g. 10.0.0.0/24. A relayed request is served from the subnet that holds its relay address. */
  cidr: z.string().refine((c) => parseCidr(c) !== undefined, 'expected a subnet such as 10.0.0.0/24'),
  /** Addresses for machines without a reservation (discovery of unknown machines); none when left out. */
  pool: strict({ start: ipv4, end: ipv4 }).optional(),
  routers: z.array(ipv4).default([]),
  dns: z.array(ipv4).default([]),
  domain: z.string().optional(),
});

const dhcpSchema = strict({
    /** off | proxy | full. Left out: proxy when an interface is named, else off. */
    mode: z.enum(['off', 'proxy', 'full']).optional(),
    interface: z.string().min(1).optional(),
    server_ip: ipv4.optional(),
    /** Port to listen on; 67 except in tests and benchmarks that run beside another server. */
    port: port.default(67),
    /** proxyDHCP's second port (PXE boot server discovery); 4011 except in tests. */
    proxy_port: port.default(4011),
    subnets: z.array(subnetSchema).default([]),
    /** Lease time for pool addresses; reserved nodes use their group's lease_seconds. */
    lease_seconds: z.number().int().min(60).default(3600),
    /** How long an offered address is held for the client that was offered it. */
    offer_seconds: z.number().int().min(5).default(60),
    /** How long an address a client declined (in use by someone else) is kept out of the pool. */
    decline_seconds: z.number().int().min(60).default(3600),
  })
  .prefault({})
  .superRefine((d, ctx) => {
    const mode = effectiveDhcpMode(d);
    if (mode === 'off') return;
    if (!d.interface) {
      ctx.addIssue({ code: 'custom', path: ['interface'], message: `required when mode is "${mode}" (name the provisioning interface)` });
    }
    if (!d.server_ip) {
      ctx.addIssue({ code: 'custom', path: ['server_ip'], message: `required when mode is "${mode}" (this server's address on the provisioning network)` });
      return;
    }
    if (mode !== 'full') {
      // In proxy mode the site's DHCP server hands out addresses: subnets and pools here would be silently unused.
      if (d.subnets.length > 0) ctx.addIssue({ code: 'custom', path: ['subnets'], message: 'used only in full mode: in proxy mode the site\'s DHCP server hands out the addresses (remove them, or set mode: full)' });
      return;
    }
    if (d.subnets.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['subnets'], message: 'full mode needs at least one subnet (the one server_ip is on)' });
      return;
    }
    const server = parseIpv4(d.server_ip);
    const maybe = d.subnets.map((s) => parseCidr(s.cidr));
    // zod runs this refinement even when a field check above failed; that failure is already reported.
    if (server === undefined || maybe.some((s) => s === undefined)) return;
    const parsed = maybe as Ipv4Subnet[];
    if (!parsed.some((s) => inSubnet(server, s))) {
      ctx.addIssue({ code: 'custom', path: ['server_ip'], message: `${d.server_ip} is in none of the subnets (the local subnet must be listed)` });
    }
    d.subnets.forEach((s, i) => {
      const net = parsed[i]!;
      parsed.forEach((other, j) => {
        if (j < i && (inSubnet(other.network, net) || inSubnet(net.network, other))) {
          ctx.addIssue({ code: 'custom', path: ['subnets', i, 'cidr'], message: `overlaps subnets[${j}] (${d.subnets[j]!.cidr})` });
        }
      });
      if (!s.pool) return;
      const start = parseIpv4(s.pool.start);
      const end = parseIpv4(s.pool.end);
      if (start === undefined || end === undefined) return;
      if (!inSubnet(start, net) || !inSubnet(end, net)) {
        ctx.addIssue({ code: 'custom', path: ['subnets', i, 'pool'], message: `the pool must lie inside ${s.cidr}` });
      } else if (start > end) {
        ctx.addIssue({ code: 'custom', path: ['subnets', i, 'pool', 'end'], message: 'the pool ends before it starts' });
      } else {
        // A pool address is handed to whichever machine asks first, and PXE ROMs do not check for a conflict before
        // using it: a pool that holds this server's or a router's address gives a client the provisioning server's.
        for (const { ip, what, address } of addressesNeverLeased(net, d.server_ip, s.routers)) {
          if (ip < start || ip > end) continue;
          const named = what === 'server' ? `server_ip ${address}` : what === 'router' ? `router ${address}` : `the ${what} address ${address}`;
          ctx.addIssue({ code: 'custom', path: ['subnets', i, 'pool'], message: `the pool ${s.pool.start}-${s.pool.end} holds ${named}: leave it out of the range` });
        }
      }
    });
  });

/** The variable a PostgreSQL URL is read from when the file names none: the password stays out of the file. */
export const DEFAULT_DATABASE_URL_ENV = 'RACKSEED_DATABASE_URL';

const POSTGRES_URL = /^postgres(ql)?:\/\/./;
const postgresUrl = z.string().regex(POSTGRES_URL, 'expected a postgres:// or postgresql:// URL');

/** store.retention, the same for both kinds. 0 days keeps that sort of record for ever. */
const retentionSchema = strict({
  /** Finished runs (apply, test, readiness, audit, install) older than this many days are removed. */
  runs_days: z.number().int().min(0).max(36_500).default(90),
  /** A node's newest finished runs of each kind stay whatever their age: readiness, the dashboard and convergence read them. */
  keep_last_runs_per_node: z.number().int().min(1).max(1000).default(5),
  /** Discovered machines (unknown MACs) not seen for this many days are forgotten, with their events. */
  discovered_days: z.number().int().min(0).max(36_500).default(30),
}).prefault({});

// "Every key is optional": a store: section without kind (only a path) is SQLite, the default kind.
const storeSchema = z.preprocess((v) => (v !== null && typeof v === 'object' && !Array.isArray(v) && !('kind' in v) ? { kind: 'sqlite', ...v } : v), z
  .discriminatedUnion('kind', [
    strict({ kind: z.literal('sqlite'), path: z.string().optional(), retention: retentionSchema }),
    strict({
      kind: z.literal('postgres'),
      /** Written in the file (passwords then too: prefer url_env). */
      url: postgresUrl.optional(),
      /** The environment variable holding the URL; RACKSEED_DATABASE_URL when neither url nor url_env is given. */
      url_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name').optional(),
      /** Connections this server keeps to the database at most. */
      pool_size: z.number().int().min(1).max(200).default(10),
      retention: retentionSchema,
    }).superRefine((s, ctx) => {
      if (s.url !== undefined && s.url_env !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['url_env'], message: 'give either url or url_env, not both' });
      }
    }),
  ])
  .prefault({ kind: 'sqlite' }));

/** A path below data_dir/files, as served on /files: no absolute paths, no way out of that directory. */
const filesPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'expected a relative path below data_dir/files without ".."');

const provisioningSchema = strict({
    kernel: filesPath.default('installer/vmlinuz'),
    initrd: filesPath.default('installer/initrd.img'),
    /** Lifetime of the per-node token on the installer's command line: it must outlive the longest install. */
    token_seconds: z.number().int().min(300).default(14400),
  })
  .prefault({});

const torrentSchema = strict({
    /** The tracker (/announce, /scrape) and the seeder; off: nodes fetch images over plain HTTP only. */
    enabled: z.boolean().default(true),
    /** TCP port the seeder listens on for peers (0: any free port). */
    seed_port: port.default(6881),
    /** How often nodes re-announce; Luna uses 20 s. */
    announce_interval_seconds: z.number().int().min(5).max(3600).default(20),
    /**
     * For this long after a leecher's started announce it is told to re-announce every second (0: never), so a node
     * hears of the nodes that booted just after it (why: askStartingLeechersBack in images/tracker.ts). Costs one
     * announce per starting node every ~2 s.
     */
    startup_announce_seconds: z.number().int().min(0).max(120).default(10),
    /** Most peers handed out per announce. */
    numwant: z.number().int().min(1).max(200).default(50),
    /**
     * Peers each downloading node is told about (aria2c uploads to 3 at a time; why: images/swarm-topology.ts), plus
     * the server's seeder. 0: a random draw of the whole swarm, up to numwant.
     */
    neighbours: z.number().int().min(0).max(50).refine((n) => n !== 1, 'must be 0 (off) or at least 2').default(3),
    /** A peer silent for this long is dropped from its swarm (a node that powered off without saying so). */
    peer_ttl_seconds: z.number().int().min(30).default(300),
    /** Peers the seeder uploads to at once per image. */
    upload_slots: z.number().int().min(1).max(200).default(16),
    /** First delay before a crashed seeder is restarted (doubles while it keeps crashing). */
    seeder_restart_seconds: z.number().int().min(1).default(5),
    /**
     * A seeder process that has sent no stats for this long (it reports every second) is hung: killed and restarted.
     * Above the 5 s after which it is reported stale, so the API shows the silence before the restart.
     */
    seeder_hung_seconds: z.number().int().min(6).default(30),
    /** Total rate per image of web-seed range requests while the seeder seeds it (0: unlimited); full speed when it does not. */
    webseed_rate_mbit_while_seeding: z.number().min(0).default(16),
  })
  .prefault({})
  .superRefine((t, ctx) => {
    // A peer must survive at least one missed announce, or healthy nodes flicker out of their swarm.
    if (t.peer_ttl_seconds < 2 * t.announce_interval_seconds) {
      ctx.addIssue({ code: 'custom', path: ['peer_ttl_seconds'], message: `must be at least twice announce_interval_seconds (${2 * t.announce_interval_seconds})` });
    }
  });

const logSchema = strict({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .prefault({});

const SERVER_NAME = /^[a-z0-9][a-z0-9-]*$/i;

const statesSchema = strict({
    /** Operator SLS directories, searched before the built-in states/ (an operator file of the same name wins). */
    dirs: z.array(z.string().min(1)).default([]),
    /** Per-group and per-node pillar (secrets): <pillar_dir>/groups/<group>.yaml, <pillar_dir>/nodes/<node>.yaml. */
    pillar_dir: z.string().optional(),
    /** Nodes a state run or audit works on at once. */
    concurrency: z.number().int().min(1).max(1000).default(16),
    /** A command on a node that runs longer is killed and its state fails. */
    command_timeout_seconds: z.number().int().min(1).default(600),
    connect_timeout_seconds: z.number().int().min(1).default(10),
    ssh_port: port.default(22),
  })
  .prefault({});

const convergenceSchema = strict({
    /** Configure installed nodes (apply their states, then check readiness) as soon as they come up, unasked. */
    enabled: z.boolean().default(true),
    /** How often nodes in `installed` are probed (a TCP connect to their SSH port). */
    probe_interval_seconds: z.number().int().min(1).default(30),
    /** Attempts while a node is unreachable (still booting), the first included; then it is marked failed. */
    max_attempts: z.number().int().min(1).max(1000).default(10),
    /** First wait between attempts; doubles each time (with jitter) up to backoff_max_seconds. */
    backoff_base_seconds: z.number().int().min(1).default(5),
    backoff_max_seconds: z.number().int().min(1).default(300),
    /** Nodes converged at once. */
    concurrency: z.number().int().min(1).max(1000).default(8),
  })
  .prefault({})
  .superRefine((c, ctx) => {
    if (c.backoff_max_seconds < c.backoff_base_seconds) {
      ctx.addIssue({ code: 'custom', path: ['backoff_max_seconds'], message: `must be at least backoff_base_seconds (${c.backoff_base_seconds})` });
    }
  });

const readinessSchema = strict({
    /** Check readiness again on every ready node (and every node that failed only its readiness) this often; 0: never. */
    interval_minutes: z.number().int().min(0).max(7 * 24 * 60).default(0),
  })
  .prefault({});

const slurmSchema = strict({
    /**
     * Drain a Slurm compute node in Slurm when its readiness checks (other than Slurm's own) fail, with the failing
     * checks as the reason, and resume it once they pass again (only drains rackseed set).
     */
    drain_unready: z.boolean().default(false),
    /**
     * One readiness run drains at most this percentage of the Slurm compute nodes (at least one); more failing at
     * once looks cluster-wide and drains none.
     */
    drain_max_percent: z.number().int().min(1).max(100).default(25),
  })
  .prefault({});

export const configSchema = strict({
  // Left out: "rackseed" with SQLite; the host name with a shared PostgreSQL store, where names must differ.
  server: strict({ name: z.string().regex(SERVER_NAME, 'expected a name of letters, digits and dashes').optional() }).prefault({}),
  data_dir: z.string().default('./data'),
  inventory: z.string().default('./inventory.yaml'),
  http: httpSchema,
  tftp: tftpSchema,
  dhcp: dhcpSchema,
  store: storeSchema,
  provisioning: provisioningSchema,
  torrent: torrentSchema,
  states: statesSchema,
  convergence: convergenceSchema,
  readiness: readinessSchema,
  slurm: slurmSchema,
  log: logSchema,
}).superRefine((c, ctx) => {
  // The default public URL carries http.port; with 0 it would send every node to port 0, while the port actually
  // bound is known only after start. DHCP hands that URL to machines, so it must be named.
  const dhcpOn = effectiveDhcpMode(c.dhcp) !== 'off';
  if (c.http.port === 0 && c.http.public_url === undefined && dhcpOn) {
    ctx.addIssue({ code: 'custom', path: ['http', 'public_url'], message: 'required when http.port is 0 and DHCP is on (nodes are sent to this URL; port 0 is only known after start)' });
  }
  // Boot scripts carry this URL to iPXE and the installer, which get their address over DHCPv4 (udhcpc): an IPv6
  // literal could never be reached, and iPXE's command line could not even carry its brackets.
  if (c.http.public_url !== undefined && URL.canParse(c.http.public_url) && new URL(c.http.public_url).hostname.startsWith('[')) {
    ctx.addIssue({ code: 'custom', path: ['http', 'public_url'], message: 'nodes boot and install over IPv4 (DHCPv4, iPXE, the installer): give an IPv4 address or a host name, not an IPv6 address' });
  }
  // In full mode the plan route serves a node's plan only to the node's own address. A trusted proxy's
  // X-Forwarded-For decides that address: a trusted range that holds nodes would let any of them claim another's.
  // (A node inside a trusted range can send the header itself.)
  if (effectiveDhcpMode(c.dhcp) === 'full') {
    const nodeNets = c.dhcp.subnets.flatMap((s) => parseCidr(s.cidr) ?? []);
    c.http.trust_proxy.forEach((entry, i) => {
      // One named host is the operator's proxy; a range or keyword over the node subnets holds nodes.
      const hit = nodeNets.find((net) => trustCovers(entry, net));
      if (hit) {
        ctx.addIssue({
          code: 'custom',
          path: ['http', 'trust_proxy', i],
          message: `"${entry}" covers the node subnet ${formatIpv4(hit.network)}/${hit.prefix}: a node could then claim another node's address (and its install plan); name the proxy's own address`,
        });
      }
    });
  }
  // DHCP sends machines to this server's HTTP: with it off, only another server's URL can be handed out.
  if (!c.http.enabled && c.http.public_url === undefined && dhcpOn) {
    ctx.addIssue({ code: 'custom', path: ['http', 'enabled'], message: 'DHCP is on and sends machines to this server over HTTP: enable HTTP, or set http.public_url to the server that serves them' });
  }
});

export type RawConfig = z.infer<typeof configSchema>;

export interface DhcpSubnetConfig {
  cidr: string;
  pool?: { start: string; end: string };
  routers: string[];
  dns: string[];
  domain?: string;
}

export interface DhcpConfig {
  mode: 'off' | 'proxy' | 'full';
  interface?: string;
  serverIp?: string;
  port: number;
  proxyPort: number;
  subnets: DhcpSubnetConfig[];
  leaseSeconds: number;
  offerSeconds: number;
  declineSeconds: number;
}

export interface TorrentConfig {
  enabled: boolean;
  seedPort: number;
  announceIntervalSeconds: number;
  startupAnnounceSeconds: number;
  numwant: number;
  neighbours: number;
  peerTtlSeconds: number;
  uploadSlots: number;
  seederRestartSeconds: number;
  seederHungSeconds: number;
  webseedRateMbitWhileSeeding: number;
}

/** The validated configuration with paths resolved and derived values filled in. */
export interface Config {
  file: string;
  serverName: string;
  dataDir: string;
  inventoryPath: string;
  http: { enabled: boolean; listen: string; port: number; publicUrl: string; trustProxy: string[] };
  tftp: { enabled: boolean; listen: string; port: number; root: string; maxTransfers: number; maxTransfersPerClient: number };
  dhcp: DhcpConfig;
  /** Resolved: a PostgreSQL URL read from the environment is in here, so never log or print this object whole. */
  store: StoreConfig;
  /** store.retention: what the server prunes from the store, and how often (server/services/store-retention.ts). */
  storeRetention: StoreRetentionConfig;
  /** Installer kernel and initrd handed to nodes that provision, relative to data_dir/files. */
  provisioning: { kernel: string; initrd: string; tokenSeconds: number };
  /** Image distribution over BitTorrent: tracker and seeder. */
  torrent: TorrentConfig;
  /** Declared states: where SLS and pillar live, and how runs reach nodes. */
  states: StatesConfig;
  /** Automatic convergence of installed nodes (server/services/convergence.ts). */
  convergence: ConvergenceConfig;
  /** Periodic readiness (0: only after convergence and on request). */
  readiness: { intervalMs: number };
  /** What rackseed tells Slurm about its compute nodes. */
  slurm: { drainUnready: boolean; drainMaxPercent: number };
  log: { level: RawConfig['log']['level'] };
}

export interface StoreRetentionConfig {
  /** 0: runs are kept for ever. */
  runsDays: number;
  keepLastRunsPerNode: number;
  /** 0: discovered machines are kept for ever. */
  discoveredDays: number;
}

export interface ConvergenceConfig {
  enabled: boolean;
  probeIntervalMs: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  concurrency: number;
}

export interface StatesConfig {
  /** Absolute operator SLS directories; the built-in states/ is searched after them. */
  dirs: string[];
  pillarDir: string;
  concurrency: number;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  sshPort: number;
}

/** What a configuration may take from its surroundings; tests pass their own. */
export interface ConfigEnvironment {
  vars: Readonly<Record<string, string | undefined>>;
  hostname: string;
}

function processEnvironment(): ConfigEnvironment {
  return { vars: process.env, hostname: hostname() };
}

/** The host name's first label as a server name, if it makes a valid one. */
function serverNameFromHost(host: string): string | undefined {
  const label = host.split('.')[0]?.toLowerCase() ?? '';
  return SERVER_NAME.test(label) ? label : undefined;
}

function resolveStore(raw: RawConfig['store'], dataDir: string, env: ConfigEnvironment, where: SourceLocator): StoreConfig {
  if (raw.kind === 'sqlite') return { kind: 'sqlite', path: path.resolve(dataDir, raw.path ?? 'rackseed.db') };
  if (raw.url !== undefined) return { kind: 'postgres', url: raw.url, poolSize: raw.pool_size };
  const name = raw.url_env ?? DEFAULT_DATABASE_URL_ENV;
  const value = env.vars[name];
  if (!value) {
    throw raw.url_env !== undefined
      ? where.error('CONFIG_INVALID', ['store', 'url_env'], `environment variable ${name} is not set (it should hold the postgres:// URL)`)
      : where.error('CONFIG_INVALID', ['store', 'url'], `missing: give store.url, or store.url_env naming an environment variable that holds the URL (the default, ${DEFAULT_DATABASE_URL_ENV}, is not set)`);
  }
  if (!POSTGRES_URL.test(value)) {
    throw where.error('CONFIG_INVALID', ['store', raw.url_env !== undefined ? 'url_env' : 'url'], `environment variable ${name} does not hold a postgres:// or postgresql:// URL`);
  }
  return { kind: 'postgres', url: value, poolSize: raw.pool_size };
}

/**
 * Validates config text; pure except for what `env` supplies (a database URL from the environment, the host name).
 * `file` is used for error messages and to resolve relative paths.
 */
export function parseConfig(text: string, file: string, env: ConfigEnvironment = processEnvironment()): Config {
  const { doc, where } = parseYamlDocument(text, file, 'CONFIG_INVALID');
  const raw = parseAt(configSchema, yamlToJs(doc, file, 'CONFIG_INVALID') ?? {}, [], where, 'CONFIG_INVALID');
  const base = path.dirname(path.resolve(file));
  const dataDir = path.resolve(base, raw.data_dir);
  const mode = effectiveDhcpMode(raw.dhcp);
  // The address nodes are told: the DHCP server address, else the listen address (a wildcard means this host: loopback).
  const listenHost = raw.http.listen === '0.0.0.0' ? '127.0.0.1' : raw.http.listen === '::' ? '::1' : raw.http.listen;
  const advertised = raw.dhcp.server_ip ?? (isIPv6(listenHost) ? `[${listenHost}]` : listenHost);
  return {
    file: path.resolve(file),
    serverName: raw.server.name ?? (raw.store.kind === 'postgres' ? serverNameFromHost(env.hostname) : undefined) ?? 'rackseed',
    dataDir,
    inventoryPath: path.resolve(base, raw.inventory),
    http: {
      enabled: raw.http.enabled,
      listen: raw.http.listen,
      port: raw.http.port,
      publicUrl: (raw.http.public_url ?? `http://${advertised}:${raw.http.port}`).replace(/\/+$/, ''),
      trustProxy: raw.http.trust_proxy,
    },
    tftp: {
      enabled: raw.tftp.enabled,
      listen: raw.tftp.listen,
      port: raw.tftp.port,
      root: path.resolve(base, raw.tftp.root),
      maxTransfers: raw.tftp.max_transfers,
      maxTransfersPerClient: raw.tftp.max_transfers_per_client,
    },
    dhcp: {
      mode,
      ...(raw.dhcp.interface ? { interface: raw.dhcp.interface } : {}),
      ...(raw.dhcp.server_ip ? { serverIp: raw.dhcp.server_ip } : {}),
      port: raw.dhcp.port,
      proxyPort: raw.dhcp.proxy_port,
      subnets: raw.dhcp.subnets.map((s) => ({
        cidr: s.cidr,
        ...(s.pool ? { pool: s.pool } : {}),
        routers: s.routers,
        dns: s.dns,
        ...(s.domain ? { domain: s.domain } : {}),
      })),
      leaseSeconds: raw.dhcp.lease_seconds,
      offerSeconds: raw.dhcp.offer_seconds,
      declineSeconds: raw.dhcp.decline_seconds,
    },
    store: resolveStore(raw.store, dataDir, env, where),
    storeRetention: {
      runsDays: raw.store.retention.runs_days,
      keepLastRunsPerNode: raw.store.retention.keep_last_runs_per_node,
      discoveredDays: raw.store.retention.discovered_days,
    },
    provisioning: { kernel: raw.provisioning.kernel, initrd: raw.provisioning.initrd, tokenSeconds: raw.provisioning.token_seconds },
    torrent: {
      enabled: raw.torrent.enabled,
      seedPort: raw.torrent.seed_port,
      announceIntervalSeconds: raw.torrent.announce_interval_seconds,
      startupAnnounceSeconds: raw.torrent.startup_announce_seconds,
      numwant: raw.torrent.numwant,
      neighbours: raw.torrent.neighbours,
      peerTtlSeconds: raw.torrent.peer_ttl_seconds,
      uploadSlots: raw.torrent.upload_slots,
      seederRestartSeconds: raw.torrent.seeder_restart_seconds,
      seederHungSeconds: raw.torrent.seeder_hung_seconds,
      webseedRateMbitWhileSeeding: raw.torrent.webseed_rate_mbit_while_seeding,
    },
    states: {
      dirs: raw.states.dirs.map((d) => path.resolve(base, d)),
      pillarDir: path.resolve(base, raw.states.pillar_dir ?? path.join(raw.data_dir, 'pillar')),
      concurrency: raw.states.concurrency,
      commandTimeoutMs: raw.states.command_timeout_seconds * 1000,
      connectTimeoutMs: raw.states.connect_timeout_seconds * 1000,
      sshPort: raw.states.ssh_port,
    },
    convergence: {
      enabled: raw.convergence.enabled,
      probeIntervalMs: raw.convergence.probe_interval_seconds * 1000,
      maxAttempts: raw.convergence.max_attempts,
      backoffBaseMs: raw.convergence.backoff_base_seconds * 1000,
      backoffMaxMs: raw.convergence.backoff_max_seconds * 1000,
      concurrency: raw.convergence.concurrency,
    },
    readiness: { intervalMs: raw.readiness.interval_minutes * 60_000 },
    slurm: { drainUnready: raw.slurm.drain_unready, drainMaxPercent: raw.slurm.drain_max_percent },
    log: raw.log,
  };
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new RackseedError('CONFIG_NOT_FOUND', `${file}: cannot read the configuration file (${(cause as Error).message})`, { file }, { cause });
  }
  return parseConfig(text, file);
}
