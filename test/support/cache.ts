import { join } from 'node:path';
import { ensureCached as ensureBuilt, xdgCacheHome } from '../../server/util/build-cache.js';

/**
 * The test suite's cache of expensive artefacts (test initramfs images, debootstrap trees, the installer), kept
 * outside the repository so fresh checkouts do not pay for a rebuild; one build cache shared with the lab
 * (server/util/build-cache.ts), under its own root.
 */

/** `${XDG_CACHE_HOME:-$HOME/.cache}/rackseed-test`. */
export function cacheRoot(): string {
  return join(xdgCacheHome(), 'rackseed-test');
}

/** The cache directory for `recipe`, running `build(tmpDir)` first when it is missing. */
export function ensureCached(name: string, recipe: unknown, build: (tmpDir: string) => Promise<void>): Promise<string> {
  return ensureBuilt(name, recipe, build, cacheRoot());
}
