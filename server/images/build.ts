import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { RackseedError } from '../model/errors.js';
import type { ImageManifest, ImageRecipe } from '../model/image.js';
import { runHook, writeRecipeFiles } from './build-chroot.js';
import { runDebootstrap } from './build-debootstrap.js';
import { checkImageName, checkNotExisting, publishImage } from './build-publish.js';
import { publishedRecipe } from './manifest.js';
import { noProgress, type ProgressFn } from './progress.js';
import { recipeWantsKernel } from './recipe.js';
import { inScratch, type Notice } from './scratch.js';

export interface BuildOptions {
  name: string;
  recipe: ImageRecipe;
  dataDir: string;
  /** http.public_url: the torrent's tracker and web seed live there. */
  publicUrl: string;
  force?: boolean;
  onProgress?: ProgressFn;
  /** Told what was done about the scratch trees of killed runs (see scratch.ts). */
  onNotice?: Notice;
  /** Makes the bare root file system in `dir`; debootstrap by default (tests copy a cached tree instead). */
  bootstrap?: (recipe: ImageRecipe, dir: string, report: ProgressFn) => Promise<void>;
}

/** debootstrap keeps every .deb it installed; an image never needs them. */
function dropPackageCache(tree: string): void {
  const dir = path.join(tree, 'var', 'cache', 'apt', 'archives');
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) if (f.endsWith('.deb')) rmSync(path.join(dir, f), { force: true });
}

/**
 * Builds an image from a recipe on this host (as root): debootstrap, the recipe's files, its hook in a chroot, then
 * packed, hashed, seeded by a torrent and published in <data_dir>/files/images/<name>. The manifest is written
 * last and the directory appears in one rename, so a failed or half-done build is never catalogued.
 */
export async function buildImage(o: BuildOptions): Promise<ImageManifest> {
  checkImageName(o.name);
  checkNotExisting(o.dataDir, o.name, o.force === true);
  if (process.getuid?.() !== 0) throw new RackseedError('IMAGE_BUILD_FAILED', 'building an image needs root (debootstrap, chroot, mount)');
  const report = o.onProgress ?? noProgress;
  const bootstrap = o.bootstrap ?? ((recipe, dir, r) => runDebootstrap(recipe, dir, r));
  return inScratch(o.dataDir, o.name, async (work) => {
    const tree = path.join(work, 'rootfs');
    await bootstrap(o.recipe, tree, report);
    report({ stage: 'files', done: 0, total: o.recipe.files.length });
    writeRecipeFiles(tree, o.recipe.files);
    report({ stage: 'files', done: o.recipe.files.length, total: o.recipe.files.length });
    if (o.recipe.hook) {
      report({ stage: 'hook', done: 0, total: 1 });
      await runHook(tree, o.recipe.hook);
      report({ stage: 'hook', done: 1, total: 1 });
    }
    dropPackageCache(tree);
    return publishImage({
      name: o.name,
      dataDir: o.dataDir,
      publicUrl: o.publicUrl,
      tree,
      work,
      source: { kind: 'debootstrap', recipe: publishedRecipe(o.recipe) },
      force: o.force === true,
      requireKernel: recipeWantsKernel(o.recipe),
      onProgress: report,
    });
  }, o.onNotice);
}
