import type { Migration } from '../migrations/types.js';

/** SQLite's migration 008 (wipe_requested) in PostgreSQL terms. */
export const wipeRequested: Migration = {
  version: 7,
  name: 'wipe_requested',
  sql: `
    ALTER TABLE node_status ADD COLUMN wipe_requested text;
  `,
};
