import type { Migration } from '../migrations/types.js';

/** SQLite's migration 003 (servers) in PostgreSQL terms. */
export const servers: Migration = {
  version: 2,
  name: 'servers',
  sql: `
    CREATE TABLE servers (
      name         text COLLATE "C" PRIMARY KEY,
      public_url   text NOT NULL,
      tracker      boolean NOT NULL,
      images       jsonb NOT NULL DEFAULT '[]',
      last_seen_at bigint NOT NULL
    );
  `,
};
