import type { Migration } from '../migrations/types.js';

/** SQLite's migration 004 (reimage_from_group) in PostgreSQL terms. */
export const reimageFromGroup: Migration = {
  version: 3,
  name: 'reimage_from_group',
  sql: `
    ALTER TABLE node_status RENAME COLUMN next_group TO reimage_from_group;
    ALTER TABLE node_status DROP COLUMN next_role;
    UPDATE node_status SET reimage_from_group = NULL;
  `,
};
