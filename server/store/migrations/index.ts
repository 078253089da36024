import { initial } from './001_initial.js';
import { onceKeys } from './002_once_keys.js';
import { servers } from './003_servers.js';
import { reimageFromGroup } from './004_reimage_from_group.js';
import { installedImage } from './005_installed_image.js';
import { runIndexes } from './006_run_indexes.js';
import { runPruneIndex } from './007_run_prune_index.js';
import { wipeRequested } from './008_wipe_requested.js';
import type { Migration } from './types.js';

export type { Migration } from './types.js';

/** Append only: a shipped migration is never edited or renumbered, because databases in the field have applied it. */
export const MIGRATIONS: readonly Migration[] = [initial, onceKeys, servers, reimageFromGroup, installedImage, runIndexes, runPruneIndex, wipeRequested];
