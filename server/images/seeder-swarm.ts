import type { SwarmView } from './swarm-view.js';
import type { RequestHandler, Router } from 'express';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { ImageCatalog } from './catalog.js';
import { startSeeder, type Seeder } from './seeder.js';
import { piecesWithin } from './torrent.js';
import { createTracker } from './tracker.js';
import { webSeedThrottle, type WebSeedThrottleStats } from '../net/http/webseed-throttle.js';

export interface ImageSwarm {
  /** What the HTTP app mounts: the tracker's routes and the swarm view for GET /api/v1/swarm. */
  httpDeps: {
    trackerRoutes?: Router;
    swarm?: SwarmView;
    /** Mounted on /files before the static route: slows the web seed while the seeder covers the image. */
    webseedThrottle?: RequestHandler;
  };
  /** Counters of the web-seed throttle (zeros without a swarm). */
  webseedStats(): WebSeedThrottleStats;
  /** Starts seeding the catalog; call once HTTP is up, since the seeder announces to this server's tracker. */
  start(): void;
  close(): Promise<void>;
}

/**
 * Tracker + seeder for the catalogued images, kept in step with the catalog. The tracker lives on the HTTP app,
 * so without HTTP (or with torrent.enabled false) there is no swarm and nodes use the plain HTTP file route.
 */
export function imageSwarm(config: Config, images: ImageCatalog, log: Logger): ImageSwarm {
  if (!config.torrent.enabled || !config.http.enabled) {
    return { httpDeps: {}, webseedStats: () => ({ throttledRequests: 0, fullSpeedRequests: 0, delayedBytes: 0 }), start() {}, async close() {} };
  }
  const t = config.torrent;
  const known = (infoHash: string) => images.list().some((i) => i.manifest.torrent.infoHash === infoHash);
  let seeder: Seeder | undefined;
  const tracker = createTracker({
    isKnown: known,
    intervalSeconds: t.announceIntervalSeconds,
    startupAnnounceSeconds: t.startupAnnounceSeconds,
    numwant: t.numwant,
    neighbours: t.neighbours,
    peerTtlSeconds: t.peerTtlSeconds,
    onLeecherJoined: (infoHash, ip, port) => seeder?.connectTo(infoHash, ip, port),
    log: log.child({ part: 'tracker' }),
  });
  const throttle = webSeedThrottle({
    rateMbit: t.webseedRateMbitWhileSeeding,
    isImage: (name) => images.get(name) !== undefined,
    seeding: (name) => {
      const image = images.get(name);
      return image !== undefined && seeder !== undefined && seeder.isSeeding(image.manifest.torrent.infoHash);
    },
    onServed: (name, start, end) => {
      const image = images.get(name);
      if (!image || !seeder) return;
      const pieces = piecesWithin(start, end, image.manifest.torrent.pieceLength, image.manifest.artefacts.rootfs.size);
      if (pieces.length > 0) seeder.webSeedServed(image.manifest.torrent.infoHash, pieces);
    },
    onModeChange: (image, mode) =>
      log.info({ image, mode, rateMbit: t.webseedRateMbitWhileSeeding }, mode === 'full' ? 'web seed at full speed (the seeder does not cover this image)' : 'web seed throttled while the seeder covers this image'),
  });
  return {
    httpDeps: { trackerRoutes: tracker.routes, swarm: { tracker: () => tracker.swarms(), seeder: () => seeder?.status(), webseed: () => throttle.stats() }, webseedThrottle: throttle.middleware },
    webseedStats: () => throttle.stats(),
    start() {
      const s = startSeeder({
        port: t.seedPort,
        // The public URL, not loopback: the tracker records the address the announce came from and hands it to nodes.
        announce: `${config.http.publicUrl}/announce`,
        uploadSlots: t.uploadSlots,
        // Each piece leaves the server once before any leaves twice (measured: 1.0 instead of 1.6-1.8 copies at 8 nodes).
        superSeed: true,
        restartSeconds: t.seederRestartSeconds,
        hungSeconds: t.seederHungSeconds,
        log: log.child({ part: 'seeder' }),
      });
      seeder = s;
      images.onChange((list) => {
        tracker.prune();
        s.setImages(list);
      });
      s.setImages(images.list());
    },
    async close() {
      await seeder?.close();
      tracker.close();
    },
  };
}
