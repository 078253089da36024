import { runIndexes as sqliteRunIndexes } from '../migrations/006_run_indexes.js';
import type { Migration } from '../migrations/types.js';

/** SQLite's migration 006 (run_indexes): the same statements, at PostgreSQL's version 5. */
export const runIndexes: Migration = { ...sqliteRunIndexes, version: 5 };
