import type { Migration } from '../migrations/types.js';

/** SQLite's migration 006 (run_indexes) in PostgreSQL terms. */
export const runIndexes: Migration = {
  version: 5,
  name: 'run_indexes',
  sql: `
    CREATE INDEX runs_started ON runs (started_at, id);
    CREATE INDEX runs_kind_started ON runs (kind, started_at, id);
    CREATE INDEX runs_running ON runs (started_at) WHERE result = 'running';
  `,
};
