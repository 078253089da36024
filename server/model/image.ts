/**
 * OS images: what an image is on disk and in the catalog. An image lives in <data_dir>/files/images/<name>/ and is
 * served read-only under /files/images/<name>/ (that URL is also the torrent's web seed):
 *
 *   manifest.json          this manifest
 *   rootfs.tar.zst         the root file system (tar with xattrs and ACLs, numeric owners, zstd)
 *   rootfs.tar.zst.torrent one private single-file torrent of the tarball
 *   vmlinuz, initrd.img    the image's kernel and initramfs (for installed_boot: kernel)
 */

export const IMAGE_FILES = {
  manifest: 'manifest.json',
  rootfs: 'rootfs.tar.zst',
  torrent: 'rootfs.tar.zst.torrent',
  kernel: 'vmlinuz',
  initrd: 'initrd.img',
} as const;

/** Image names become directory names and URL path segments. */
export const IMAGE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** A sha256 as manifests, plans and install reports carry it: 64 lower-case hex digits. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface Artefact {
  file: string;
  sha256: string;
  size: number;
}

/** A build recipe (YAML in images/*.yaml): what debootstrap installs and what is added on top. */
export interface ImageRecipe {
  /** Debian release for debootstrap, e.g. bookworm. */
  release: string;
  /** debootstrap variant: minbase or (default) the standard one. */
  variant?: 'minbase' | 'buildd' | 'fakechroot';
  packages: string[];
  files: Array<{ path: string; content: string; mode?: string }>;
  /** A shell script run inside the root file system (chroot) after packages and files. */
  hook?: string;
}

/**
 * The recipe as an image's manifest keeps it. The manifest is served to anyone on the boot network (/files), and a
 * hook often carries build-time secrets (a private mirror's password, written and removed again), so the hook is
 * recorded by its sha256: enough to tell which hook built the image, nothing to read.
 */
export type PublishedRecipe = Omit<ImageRecipe, 'hook'> & { hookSha256?: string };

export interface ImageManifest {
  /** Format version of this file. */
  version: 1;
  name: string;
  /** ISO 8601. */
  createdAt: string;
  source: { kind: 'debootstrap'; recipe: PublishedRecipe } | { kind: 'import'; from: string };
  artefacts: {
    rootfs: Artefact;
    kernel?: Artefact;
    initrd?: Artefact;
  };
  torrent: {
    file: string;
    infoHash: string;
    pieceLength: number;
  };
}

/** Whether a node can boot the image's own kernel (installed_boot: kernel): an import of a tree without /boot has neither. */
export const hasKernelAndInitrd = (m: ImageManifest): boolean => m.artefacts.kernel !== undefined && m.artefacts.initrd !== undefined;

/** A catalogued image: its manifest, where it is on disk, and where nodes fetch it. */
export interface ImageRecord {
  manifest: ImageManifest;
  dir: string;
  /** URL path (below the server's public URL) of the image directory: /files/images/<name> */
  urlPath: string;
}
