import type { Migration } from './types.js';

/** Keys that may be used once (single-use tokens); rows are kept until they expire, then pruned. */
export const onceKeys: Migration = {
  version: 2,
  name: 'once_keys',
  sql: `
    CREATE TABLE once_keys (
      key        TEXT PRIMARY KEY,
      used_at    INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    );
    CREATE INDEX once_keys_expires ON once_keys (expires_at);
  `,
};
