import type { Migration } from './types.js';

/**
 * Pruning keeps a node's newest runs of each kind: for every old run it looks at the same node's newer runs of that
 * kind. On (node, started_at) alone that meant walking all of a node's newer runs of every kind (an hourly audit adds
 * 8,760 a year) for each old apply.
 */
export const runPruneIndex: Migration = {
  version: 7,
  name: 'run_prune_index',
  sql: `
    CREATE INDEX runs_node_kind_started ON runs (node, kind, started_at, id);
  `,
};
