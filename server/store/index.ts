import { SqliteStore } from './sqlite.js';
import type { ObservedStore } from './types.js';

export type * from './types.js';
export { SqliteStore } from './sqlite.js';
export type { SqliteSettings } from './sqlite-open.js';

/** Which backend holds observed state. Only SQLite so far; PostgreSQL joins this union. */
export type StoreConfig = { kind: 'sqlite'; path: string };

/** Opens the configured store with its schema already migrated, ready for use. */
export async function openStore(config: StoreConfig): Promise<ObservedStore> {
  switch (config.kind) {
    case 'sqlite':
      return SqliteStore.open(config.path);
  }
}
