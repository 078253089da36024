import type { Migration } from './types.js';

/** A pending or running wipe (`rackseed wipe`) and its mode, quick or full; NULL when none. */
export const wipeRequested: Migration = {
  version: 8,
  name: 'wipe_requested',
  sql: `
    ALTER TABLE node_status ADD COLUMN wipe_requested TEXT;
  `,
};
