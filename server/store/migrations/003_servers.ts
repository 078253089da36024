import type { Migration } from './types.js';

/**
 * The rackseed servers sharing this store, one row each, rewritten by every heartbeat. Not history: a server that
 * stops heartbeating simply ages out of listServers(maxAgeMs).
 */
export const servers: Migration = {
  version: 3,
  name: 'servers',
  sql: `
    CREATE TABLE servers (
      name         TEXT PRIMARY KEY,
      public_url   TEXT NOT NULL,
      tracker      INTEGER NOT NULL,
      images       TEXT NOT NULL DEFAULT '[]',
      last_seen_at INTEGER NOT NULL
    );
  `,
};
