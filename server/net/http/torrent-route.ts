import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Router } from 'express';
import type { ImageCatalog } from '../../images/catalog.js';
import { withSources, type TorrentSources } from '../../images/torrent-sources.js';
import { IMAGE_FILES, type ImageRecord } from '../../model/image.js';
import { errorBody } from './errors.js';

export interface TorrentRouteDeps {
  images: ImageCatalog;
  /** Trackers and web seeds to write into an image's torrent as it is served. */
  torrentSources: (image: ImageRecord) => Promise<TorrentSources>;
}

/**
 * GET /files/images/<name>/<torrent>: the image's torrent with the trackers and web seeds of the servers that are up
 * right now (see ServerRegistry), instead of the ones written when the image was built. Only announce, announce-list
 * and url-list change, so the info-hash is the catalogue's. Everything else under /files is left to the static route.
 */
export function torrentRoute(deps: TorrentRouteDeps): Router {
  const router = Router();
  router.get('/files/images/:name/:file', async (req, res, next) => {
    const image = deps.images.get(req.params.name);
    const torrentFile = image && (image.manifest.torrent.file || IMAGE_FILES.torrent);
    if (!image || req.params.file !== torrentFile) {
      next();
      return;
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(path.join(image.dir, torrentFile));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      res.status(404).json(errorBody('NOT_FOUND', `image ${image.manifest.name} has no torrent file (rebuild or re-import it)`));
      return;
    }
    const sources = await deps.torrentSources(image);
    let served: Uint8Array;
    try {
      served = withSources(bytes, sources);
    } catch (e) {
      // A node's installer falls back to plain HTTP on any failure here; the operator needs the image named.
      res.status(500).json(errorBody('INTERNAL', `the torrent file of image ${image.manifest.name} is corrupt (${(e as Error).message}): rebuild or re-import the image`));
      return;
    }
    res.status(200).type('application/x-bittorrent').set('cache-control', 'no-store').send(Buffer.from(served));
  });
  return router;
}
