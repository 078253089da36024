import type { Migration } from '../migrations/types.js';

/** SQLite's migration 005 (installed_image) in PostgreSQL terms. */
export const installedImage: Migration = {
  version: 4,
  name: 'installed_image',
  sql: `
    ALTER TABLE node_status ADD COLUMN installed_image text;
    ALTER TABLE node_status ADD COLUMN installed_image_sha256 text;
  `,
};
