import type { Migration } from '../migrations/types.js';
import { initial } from './001_initial.js';
import { servers } from './002_servers.js';
import { reimageFromGroup } from './003_reimage_from_group.js';
import { installedImage } from './004_installed_image.js';
import { runIndexes } from './005_run_indexes.js';
import { runPruneIndex } from './006_run_prune_index.js';
import { wipeRequested } from './007_wipe_requested.js';

export type { Migration } from '../migrations/types.js';

/**
 * PostgreSQL schema steps. Numbered independently of the SQLite ones (a PostgreSQL database starts at the schema
 * SQLite reached in several steps). Append only: a shipped migration is never edited or renumbered.
 */
export const PG_MIGRATIONS: readonly Migration[] = [initial, servers, reimageFromGroup, installedImage, runIndexes, runPruneIndex, wipeRequested];
