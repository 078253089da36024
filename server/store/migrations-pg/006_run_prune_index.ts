import { runPruneIndex as sqliteRunPruneIndex } from '../migrations/007_run_prune_index.js';
import type { Migration } from '../migrations/types.js';

/** SQLite's migration 007 (run_prune_index): the same statement, at PostgreSQL's version 6. */
export const runPruneIndex: Migration = { ...sqliteRunPruneIndex, version: 6 };
