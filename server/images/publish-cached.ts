import { copyFileSync, existsSync, linkSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { IMAGE_FILES, type ImageManifest } from '../model/image.js';
import { retargetImage } from './build-publish.js';
import { imagesDir } from './catalog.js';

/** Hard link when on the same file system (no copy of hundreds of MiB), else copy. */
function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    copyFileSync(from, to);
  }
}

/**
 * Puts an image built once into a build cache into a server's data directory as image `name`, with its torrent and
 * manifest rewritten for `publicUrl` (the server's http.public_url). The big artefacts are linked, never written
 * through, so the cache stays intact; the copy is staged under a name the catalog ignores (a leading dot) and
 * renamed into place, so a rescan never sees the cached manifest's old name.
 */
export async function publishCachedImage(cachedDir: string, dataDir: string, name: string, publicUrl: string): Promise<ImageManifest> {
  const dir = path.join(imagesDir(dataDir), name);
  if (existsSync(dir)) throw new Error(`${dir} already exists`);
  const stage = path.join(imagesDir(dataDir), `.${name}.importing`);
  mkdirSync(stage, { recursive: true });
  for (const f of [IMAGE_FILES.rootfs, IMAGE_FILES.kernel, IMAGE_FILES.initrd]) linkOrCopy(path.join(cachedDir, f), path.join(stage, f));
  copyFileSync(path.join(cachedDir, IMAGE_FILES.manifest), path.join(stage, IMAGE_FILES.manifest));
  const manifest = await retargetImage(stage, name, publicUrl);
  renameSync(stage, dir);
  return manifest;
}
