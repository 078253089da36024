import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { buildImage } from '../images/build.js';
import { runDebootstrap } from '../images/build-debootstrap.js';
import { publishCachedImage } from '../images/publish-cached.js';
import { imagesDir } from '../images/catalog.js';
import { buildInstaller, type InstallerBuild } from '../images/installer-build.js';
import type { ProgressFn } from '../images/progress.js';
import { bootstrapInputs, loadRecipe } from '../images/recipe.js';
import { removeTree } from '../images/remove-tree.js';
import type { ImageManifest, ImageRecipe } from '../model/image.js';
import { PACKAGE_ROOT } from '../paths.js';
import { ensureCached, labCacheRoot } from '../util/build-cache.js';

/**
 * What the lab's machines install and boot: the lab image (images/lab-slurm.yaml, with every package its roles
 * need, since the machines have no archive to fetch from) and the installer. Both are built once on this host with
 * the same code as `rackseed image build` and `rackseed installer build`, cached, and linked into each lab server's
 * data directory.
 */

export const LAB_RECIPE_FILE = path.join(PACKAGE_ROOT, 'images', 'lab-slurm.yaml');
export const LAB_IMAGE_NAME = 'lab-slurm';

/** The URL the cached image is built against; importing it rewrites torrent and manifest for the lab server. */
const PLACEHOLDER_PUBLIC_URL = 'http://rackseed.invalid:8080';
// Bump when the image is made differently without the recipe changing.
const IMAGE_FORMAT = 1;

export type Say = (line: string) => void;

/** A debootstrap tree for the recipe's packages, made once (a few minutes), then copied (seconds). */
async function cachedBootstrap(recipe: ImageRecipe, say: Say): Promise<string> {
  const dir = await ensureCached('debootstrap', bootstrapInputs(recipe), async (tmp) => {
    say(`debootstrap ${recipe.release} with ${recipe.packages.length} packages (once; a few minutes)`);
    await runDebootstrap(recipe, path.join(tmp, 'rootfs'), () => {});
  });
  return path.join(dir, 'rootfs');
}

/** The cached lab image directory (laid out per server/model/image.ts); built on the first call. */
export async function ensureLabImage(say: Say = () => {}): Promise<string> {
  const recipe = loadRecipe(LAB_RECIPE_FILE);
  const dir = await ensureCached('image', { recipe, format: IMAGE_FORMAT }, async (tmp) => {
    const tree = await cachedBootstrap(recipe, say);
    say(`building image ${LAB_IMAGE_NAME} from ${LAB_RECIPE_FILE}`);
    const dataDir = path.join(tmp, 'data');
    const copyTree = async (_r: ImageRecipe, into: string, report: ProgressFn): Promise<void> => {
      report({ stage: 'debootstrap', done: 0, total: 1, detail: 'copy of the cached tree' });
      mkdirSync(into, { recursive: true });
      // -a keeps owners, modes, links, device nodes, xattrs and ACLs: the copy is the tree debootstrap made.
      execFileSync('cp', ['-a', `${tree}/.`, into]);
      report({ stage: 'debootstrap', done: 1, total: 1, detail: 'copy of the cached tree' });
    };
    await buildImage({ name: LAB_IMAGE_NAME, recipe, dataDir, publicUrl: PLACEHOLDER_PUBLIC_URL, bootstrap: copyTree });
    renameSync(path.join(imagesDir(dataDir), LAB_IMAGE_NAME), path.join(tmp, 'image'));
    await removeTree(dataDir);
  });
  return path.join(dir, 'image');
}

/** The installer kernel and initramfs, built into the lab cache (its build.json makes later calls a no-op). */
export function ensureLabInstaller(say: Say = () => {}): Promise<InstallerBuild> {
  return buildInstaller({ outDir: path.join(labCacheRoot(), 'installer'), progress: say });
}

/** Puts the cached image into a server's data directory, torrent and manifest rewritten for `publicUrl`. */
export function importLabImage(imageDir: string, dataDir: string, publicUrl: string): Promise<ImageManifest> {
  return publishCachedImage(imageDir, dataDir, LAB_IMAGE_NAME, publicUrl);
}

/** Copies the installer where the default provisioning.kernel/initrd point (<data_dir>/files/installer/). */
export function importInstaller(dataDir: string, build: InstallerBuild): void {
  const dir = path.join(dataDir, 'files', 'installer');
  mkdirSync(dir, { recursive: true });
  copyFileSync(build.kernel, path.join(dir, 'vmlinuz'));
  copyFileSync(build.initrd, path.join(dir, 'initrd.img'));
}
