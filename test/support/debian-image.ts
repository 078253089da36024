import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { ImageManifest, ImageRecipe } from '../../server/model/image.js';
import { buildImage } from '../../server/images/build.js';
import { runDebootstrap } from '../../server/images/build-debootstrap.js';
import { publishCachedImage } from '../../server/images/publish-cached.js';
import { imagesDir } from '../../server/images/catalog.js';
import type { ProgressFn } from '../../server/images/progress.js';
import { bootstrapInputs, loadRecipe } from '../../server/images/recipe.js';
import { ensureCached } from './cache.js';

/** The URL the cached bootable image is built against; installImageInto rewrites it for a real server. */
export const PLACEHOLDER_PUBLIC_URL = 'http://rackseed.invalid:8080';

/** The production recipe: the test image is exactly it, plus a test key and a trimmed kernel module tree. */
export const BOOTABLE_RECIPE_FILE = path.resolve(import.meta.dirname, '../../images/debian12.yaml');

/**
 * A debootstrap tree for the recipe's debootstrap inputs (release, variant, packages), cached outside the repository:
 * the first run downloads and installs (a minute or two), later runs copy the cached tree (seconds). Files and hook
 * are not part of the key: every build applies them to a fresh copy.
 */
export async function cachedBootstrap(recipe: Pick<ImageRecipe, 'release' | 'variant' | 'packages'>): Promise<string> {
  const dir = await ensureCached('debootstrap', bootstrapInputs({ ...recipe, files: [] }), async (tmp) => {
    await runDebootstrap(recipe, path.join(tmp, 'rootfs'), () => {});
  });
  return path.join(dir, 'rootfs');
}

/** A `bootstrap` for buildImage that copies the cached tree instead of running debootstrap. */
export async function copyCachedBootstrap(recipe: ImageRecipe, dir: string, report: ProgressFn): Promise<void> {
  const cached = await cachedBootstrap(recipe);
  report({ stage: 'debootstrap', done: 0, total: 1, detail: 'copy of the cached tree' });
  mkdirSync(dir, { recursive: true });
  // -a keeps owners, modes, links, device nodes, xattrs and ACLs: the copy is the tree debootstrap made.
  execFileSync('cp', ['-a', `${cached}/.`, dir]);
  report({ stage: 'debootstrap', done: 1, total: 1, detail: 'copy of the cached tree' });
}

/**
 * What a QEMU guest of a test never needs (GPUs, sound, cameras, radios): a fifth of the image, and of the time a
 * TCG-emulated installer spends unpacking it. The initramfs is remade without them.
 */
const TRIM_HOOK = `
for k in /usr/lib/modules/*; do
  for d in drivers/gpu sound drivers/media drivers/net/wireless net/wireless net/mac80211 drivers/bluetooth net/bluetooth drivers/staging drivers/iio drivers/isdn; do
    rm -rf "$k/kernel/$d"
  done
  depmod -a "$(basename "$k")"
done
rm -rf /usr/share/locale/*
update-initramfs -u -k all
`;

export interface BootableTestImage {
  /** An image directory laid out per server/model/image.ts, built against PLACEHOLDER_PUBLIC_URL. */
  dir: string;
  /** Private key (ed25519) whose public half is root's only authorized key in the image. */
  sshKey: string;
}

// Bump when the way the image is made changes without the recipe changing.
const BOOTABLE_FORMAT = 1;

/**
 * A bootable Debian 12 image (kernel, initramfs, systemd, udev, networkd on DHCP, sshd with root by key only),
 * built once with the real pipeline and cached; the first call takes a few minutes, later calls return at once.
 */
export async function ensureBootableTestImage(): Promise<BootableTestImage> {
  const base = loadRecipe(BOOTABLE_RECIPE_FILE);
  const key = { recipe: base, trim: TRIM_HOOK, format: BOOTABLE_FORMAT };
  const dir = await ensureCached('bootable-image', key, async (tmp) => {
    const keyFile = path.join(tmp, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'rackseed-test', '-f', keyFile]);
    const recipe: ImageRecipe = {
      ...base,
      files: [...base.files, { path: '/root/.ssh/authorized_keys', content: readFileSync(`${keyFile}.pub`, 'utf8'), mode: '0600' }],
      hook: `${base.hook ?? ''}\n${TRIM_HOOK}`,
    };
    const dataDir = path.join(tmp, 'data');
    await buildImage({ name: 'debian12', recipe, dataDir, publicUrl: PLACEHOLDER_PUBLIC_URL, bootstrap: copyCachedBootstrap });
    renameSync(path.join(imagesDir(dataDir), 'debian12'), path.join(tmp, 'image'));
    execFileSync('rm', ['-rf', '--one-file-system', dataDir]);
  });
  return { dir: path.join(dir, 'image'), sshKey: path.join(dir, 'id_ed25519') };
}

/**
 * Puts the cached bootable image into a server's data directory as image `name`, with torrent and manifest rewritten
 * for `publicUrl` (the server's http.public_url); the cache stays intact.
 */
export async function installImageInto(dataDir: string, publicUrl: string, name: string): Promise<ImageManifest> {
  const { dir: cached } = await ensureBootableTestImage();
  return publishCachedImage(cached, dataDir, name, publicUrl);
}
