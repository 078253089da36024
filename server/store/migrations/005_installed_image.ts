import type { Migration } from './types.js';

/**
 * The image a node's last install put on its disk (name and rootfs sha256): an installed_boot kernel node boots that
 * image's kernel, which need not be its group's current image. Nodes installed before this column have none, and
 * boot their group's image as before.
 */
export const installedImage: Migration = {
  version: 5,
  name: 'installed_image',
  sql: `
    ALTER TABLE node_status ADD COLUMN installed_image TEXT;
    ALTER TABLE node_status ADD COLUMN installed_image_sha256 TEXT;
  `,
};
