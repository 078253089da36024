import type { Migration } from './types.js';

/**
 * Runs accumulate (a daily audit of 5,000 nodes adds 1.8 million a year), and three queries read them across nodes:
 * the fleet's newest runs (GET /api/v1/runs), the newest of one kind, and the runs a server left `running` (closed at
 * its start). Without these indexes each scanned and sorted the whole table, synchronously, stalling the server.
 */
export const runIndexes: Migration = {
  version: 6,
  name: 'run_indexes',
  sql: `
    CREATE INDEX runs_started ON runs (started_at, id);
    CREATE INDEX runs_kind_started ON runs (kind, started_at, id);
    CREATE INDEX runs_running ON runs (started_at) WHERE result = 'running';
  `,
};
