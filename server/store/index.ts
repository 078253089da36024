import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { ObservedStore } from './types.js';

export type * from './types.js';
export { SqliteStore } from './sqlite.js';
export type { SqliteSettings } from './sqlite-open.js';
export { PostgresStore, type PostgresSettings } from './postgres.js';
export { redactUrl } from './postgres-open.js';

/** Which backend holds observed state: SQLite for one server, PostgreSQL when several servers share it. */
export type StoreConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; poolSize: number };

/** Opens the configured store with its schema already migrated, ready for use. */
export async function openStore(config: StoreConfig): Promise<ObservedStore> {
  switch (config.kind) {
    case 'sqlite':
      return SqliteStore.open(config.path);
    case 'postgres':
      return PostgresStore.open({ url: config.url, poolSize: config.poolSize });
  }
}
