import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { hasKernelAndInitrd, IMAGE_FILES, IMAGE_NAME, type ImageRecord } from '../model/image.js';
import type { CatalogLookup } from '../protocol/ipxe/decide.js';
import { replaceFileDurably } from '../util/replace-file.js';
import { parseManifest, withoutHookText } from './manifest.js';

/** Where images live: <data_dir>/files/images, served as /files/images. */
export function imagesDir(dataDir: string): string {
  return path.join(dataDir, 'files', 'images');
}

/** What the boot decision and the plan route need to know of the catalog's images. */
export function catalogLookup(images: Pick<ImageCatalog, 'get'>): CatalogLookup {
  return (name) => {
    const image = images.get(name);
    return image && { hasKernel: hasKernelAndInitrd(image.manifest), sha256: image.manifest.artefacts.rootfs.sha256 };
  };
}

/**
 * The images present in the data directory, read from their manifests. An image directory without a valid manifest
 * is skipped with a warning (a build in progress writes its manifest last, so it is never half-listed).
 */
export class ImageCatalog {
  private images = new Map<string, ImageRecord>();
  private readonly listeners = new Set<(images: ImageRecord[]) => void>();

  constructor(
    private readonly dataDir: string,
    private readonly log: Logger,
  ) {
    this.rescan();
  }

  list(): ImageRecord[] {
    return [...this.images.values()].sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));
  }

  get(name: string): ImageRecord | undefined {
    return this.images.get(name);
  }

  onChange(listener: (images: ImageRecord[]) => void): void {
    this.listeners.add(listener);
  }

  rescan(): ImageRecord[] {
    const root = imagesDir(this.dataDir);
    const found = new Map<string, ImageRecord>();
    const names = existsSync(root) ? readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name) : [];
    for (const name of names) {
      if (!IMAGE_NAME.test(name)) continue;
      const dir = path.join(root, name);
      const file = path.join(dir, IMAGE_FILES.manifest);
      if (!existsSync(file)) continue;
      try {
        let manifest = parseManifest(readFileSync(file, 'utf8'), file);
        if (manifest.name !== name) throw new Error(`${file}: names image "${manifest.name}" but lives in "${name}"`);
        const redacted = withoutHookText(manifest);
        if (redacted) {
          // Rewritten before the image is listed, so /files never serves the text again; an image whose manifest
          // cannot be rewritten is not listed (its error says why).
          try {
            replaceFileDurably(file, `${JSON.stringify(redacted, null, 2)}\n`);
          } catch (e) {
            throw new Error(`${file}: holds the recipe hook's text and could not be rewritten without it (${(e as Error).message})`);
          }
          manifest = redacted;
          this.log.warn({ image: name }, "manifest from an older rackseed held the recipe hook's text (served on the boot network); rewritten with the hook's sha256 only");
        }
        found.set(name, { manifest, dir, urlPath: `/files/images/${name}` });
      } catch (e) {
        this.log.warn({ image: name, err: (e as Error).message }, 'image skipped: its manifest cannot be used');
      }
    }
    this.images = found;
    const list = this.list();
    for (const l of this.listeners) l(list);
    return list;
  }
}
