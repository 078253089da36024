import type { SwarmView } from '../images/swarm-view.js';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { DhcpStats } from '../dhcp/stats.js';
import { LIFECYCLE_STATES } from '../model/lifecycle.js';
import type { ImageRecord } from '../model/image.js';
import type { TftpStats } from '../net/tftp.js';
import type { ObservedStore } from '../store/types.js';

export interface ScrapeSources {
  store: Pick<ObservedStore, 'listNodes'>;
  /** Live DHCP and TFTP counters (absent for a listener that is off). */
  netbootStats: () => { dhcp?: DhcpStats; tftp?: TftpStats };
  /**
   * Whether the configuration runs a TFTP server: its families are registered only then. A family without labels
   * always exports a sample (0 after a reset), which would show a server that has no TFTP as a live, idle one.
   */
  tftpEnabled: boolean;
  /** To name swarms by image rather than by info hash. */
  images?: { list(): ImageRecord[] };
  /** Absent when torrent.enabled is false; the swarm families are then not registered (no seeder_up 0 to alert on). */
  swarm?: SwarmView;
}

const DHCP_PACKET_KINDS = ['received', 'offers', 'acks', 'naks', 'proxyOffers', 'proxyAcks', 'informs', 'releases', 'declines', 'sendErrors'] as const;

/**
 * A counter whose value is owned by a subsystem's own stats object: on every scrape it is reset and set from a
 * snapshot, so it reports exactly what the subsystem counted (and restarts from 0 with the process, as counters do).
 */
function snapshotCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: () => Array<[Partial<Record<L, string>>, number]>): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

/** Registers, on `registry`, the metrics read from live state when Prometheus scrapes. */
export function registerScrapeMetrics(registry: Registry, src: ScrapeSources): void {
  collectDefaultMetrics({ register: registry });

  snapshotCounter(registry, 'rackseed_dhcp_packets_total', 'DHCP datagrams received and replies sent, by kind', ['kind'], () => {
    const d = src.netbootStats().dhcp;
    return d ? DHCP_PACKET_KINDS.map((k) => [{ kind: k }, d[k]]) : [];
  });
  snapshotCounter(registry, 'rackseed_dhcp_dropped_total', 'DHCP datagrams dropped (not valid DHCP or not handled), by reason', ['reason'], () =>
    Object.entries(src.netbootStats().dhcp?.dropped ?? {}).map(([reason, n]) => [{ reason }, n]),
  );
  snapshotCounter(registry, 'rackseed_dhcp_ignored_total', 'Valid DHCP requests deliberately not answered, by reason', ['reason'], () =>
    Object.entries(src.netbootStats().dhcp?.ignored ?? {}).map(([reason, n]) => [{ reason }, n]),
  );

  if (src.tftpEnabled) registerTftpMetrics(registry, src);
  if (src.swarm) registerSwarmMetrics(registry, src.swarm, src.images);

  new Gauge({
    name: 'rackseed_nodes',
    help: 'Nodes (and discovered machines) per lifecycle state',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const counts = new Map<string, number>(LIFECYCLE_STATES.map((s) => [s, 0]));
      for (const n of await src.store.listNodes()) counts.set(n.state, (counts.get(n.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'rackseed_nodes_reimage_pending',
    help: 'Nodes marked for reimaging that have not started provisioning yet',
    registers: [registry],
    async collect() {
      this.set((await src.store.listNodes()).filter((n) => n.reimageRequested).length);
    },
  });
}

function registerTftpMetrics(registry: Registry, src: ScrapeSources): void {
  const tftp = () => src.netbootStats().tftp;
  snapshotCounter(registry, 'rackseed_tftp_requests_total', 'Datagrams that reached the TFTP port', [], () => (tftp() ? [[{}, tftp()!.requests]] : []));
  snapshotCounter(registry, 'rackseed_tftp_transfers_total', 'TFTP transfers completed', [], () => (tftp() ? [[{}, tftp()!.transfersOk]] : []));
  snapshotCounter(registry, 'rackseed_tftp_sent_bytes_total', 'Bytes sent over TFTP', [], () => (tftp() ? [[{}, tftp()!.bytesSent]] : []));
  snapshotCounter(registry, 'rackseed_tftp_errors_total', 'TFTP requests or transfers that failed, by reason', ['reason'], () =>
    Object.entries(tftp()?.errors ?? {}).map(([reason, n]) => [{ reason }, n]),
  );
  snapshotCounter(registry, 'rackseed_tftp_foreign_packets_total', 'Packets on a transfer port from someone other than its client', [], () =>
    tftp() ? [[{}, tftp()!.foreignPackets]] : [],
  );
  new Gauge({
    name: 'rackseed_tftp_active_transfers',
    help: 'TFTP transfers in progress',
    registers: [registry],
    collect() {
      this.reset();
      const t = tftp();
      if (t) this.set(t.active);
    },
  });
}

function registerSwarmMetrics(registry: Registry, swarm: SwarmView, images: ScrapeSources['images']): void {
  const imageName = (infoHash: string): string => images?.list().find((i) => i.manifest.torrent.infoHash === infoHash)?.manifest.name ?? infoHash;
  new Gauge({
    name: 'rackseed_swarm_peers',
    help: 'Peers the tracker knows per image, by role (seeder = complete, leecher = downloading)',
    labelNames: ['image', 'role'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of swarm.tracker()) {
        const image = imageName(s.infoHash);
        this.set({ image, role: 'seeder' }, s.seeders);
        this.set({ image, role: 'leecher' }, s.leechers);
      }
    },
  });
  new Gauge({
    name: 'rackseed_swarm_peer_uploaded_bytes',
    help: 'Bytes the peers of each image report having uploaded (node-to-node transfer), as last announced',
    labelNames: ['image'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of swarm.tracker()) this.set({ image: imageName(s.infoHash) }, s.peers.reduce((sum, p) => sum + p.uploaded, 0));
    },
  });
  snapshotCounter(registry, 'rackseed_webseed_requests_total', 'Web-seed range requests for image tarballs, by mode (throttled while the seeder seeds, full otherwise)', ['mode'], () => {
    const w = swarm.webseed?.();
    return w ? [[{ mode: 'throttled' }, w.throttledRequests], [{ mode: 'full' }, w.fullSpeedRequests]] : [];
  });
  snapshotCounter(registry, 'rackseed_webseed_delayed_bytes_total', 'Bytes of web-seed responses that waited for the pacing bucket', [], () => {
    const w = swarm.webseed?.();
    return w ? [[{}, w.delayedBytes]] : [];
  });
  snapshotCounter(registry, 'rackseed_swarm_seeder_uploaded_bytes_total', "Bytes the server's own seeder uploaded, per image", ['image'], () =>
    (swarm.seeder()?.torrents ?? []).map((t) => [{ image: t.name }, t.uploaded]),
  );
  new Gauge({
    name: 'rackseed_swarm_seeder_peers',
    help: "Peers connected to the server's own seeder, per image",
    labelNames: ['image'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const t of swarm.seeder()?.torrents ?? []) this.set({ image: t.name }, t.peers.length);
    },
  });
  new Gauge({
    name: 'rackseed_swarm_webseed_pieces',
    help: 'Pieces the web seed delivered whole while the seeder seeded the image (super-seeding skips them), per image',
    labelNames: ['image'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const t of swarm.seeder()?.torrents ?? []) this.set({ image: t.name }, t.webSeedPieces);
    },
  });
  new Gauge({
    name: 'rackseed_swarm_first_round_ratio',
    help: "Share of the image's pieces super-seeding has handed out at least once (1: every piece has left the server), per image",
    labelNames: ['image'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const t of swarm.seeder()?.torrents ?? []) if (t.firstRound && t.firstRound.of > 0) this.set({ image: t.name }, t.firstRound.pieces / t.firstRound.of);
    },
  });
  new Gauge({
    name: 'rackseed_swarm_seeder_up',
    help: "1 while the server's seeder process runs",
    registers: [registry],
    collect() {
      this.set(swarm.seeder()?.running ? 1 : 0);
    },
  });
}
