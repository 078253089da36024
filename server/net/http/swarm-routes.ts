import type { SwarmView } from '../../images/swarm-view.js';
import { Router } from 'express';
import type { ImageCatalog } from '../../images/catalog.js';

export interface SwarmDeps {
  images: ImageCatalog;
  /** Absent when torrent.enabled is false. */
  swarm?: SwarmView;
}

/**
 * GET /swarm: per catalogued image, the peers as the tracker last heard them (node-to-node transfers show up as
 * node peers with uploaded > 0) and what the server's own seeder has uploaded. Mounted under /api/v1.
 */
export function swarmRoutes(deps: SwarmDeps): Router {
  const r = Router();
  r.get('/swarm', (_req, res) => {
    if (!deps.swarm) {
      res.json({ enabled: false, images: [] });
      return;
    }
    const swarms = new Map(deps.swarm.tracker().map((s) => [s.infoHash, s]));
    const seeder = deps.swarm.seeder();
    const seeds = new Map((seeder?.torrents ?? []).map((t) => [t.infoHash, t]));
    const images = deps.images.list().map((img) => {
      const infoHash = img.manifest.torrent.infoHash;
      const swarm = swarms.get(infoHash);
      const seed = seeds.get(infoHash);
      return {
        name: img.manifest.name,
        infoHash,
        seeders: swarm?.seeders ?? 0,
        leechers: swarm?.leechers ?? 0,
        peers: swarm?.peers ?? [],
        seeder: seed ? { state: seed.state, ...(seed.error ? { error: seed.error } : {}), uploaded: seed.uploaded, uploadSpeed: seed.uploadSpeed, webSeedPieces: seed.webSeedPieces, ...(seed.firstRound ? { firstRound: seed.firstRound } : {}), peers: seed.peers } : null,
      };
    });
    const { torrents: _t, ...process } = seeder ?? { running: false, restarts: 0, torrents: [] };
    res.json({ enabled: true, seeder: process, images });
  });
  return r;
}
