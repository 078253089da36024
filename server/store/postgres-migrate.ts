import type pg from 'pg';

import { RackseedError } from '../model/errors.js';
import { PG_MIGRATIONS, type Migration } from './migrations-pg/index.js';
import { redactUrl } from './postgres-open.js';

/**
 * Advisory lock keys (two int4s: "rackseed", then the purpose). Advisory locks are per database, so servers sharing
 * a database share them, and they vanish with the connection that held them (a crashed server cannot leave one).
 */
export const LOCK_NAMESPACE = 0x72736564;
export const MIGRATE_LOCK = 1;
export const EVENT_LOG_LOCK = 2;
export const LEASES_LOCK = 3;

function checkOrdered(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    const prev = migrations[i - 1];
    if (!Number.isInteger(m.version) || m.version < 1 || (prev && m.version <= prev.version)) {
      throw new RackseedError('STORE_MIGRATION', `migration list is not strictly ascending at "${m.name}" (version ${m.version})`, { version: m.version });
    }
  });
}

async function appliedVersions(client: pg.ClientBase): Promise<number[]> {
  const r = await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
  return r.rows.map((row) => row.version);
}

/** A database touched by a newer rackseed must not be written by us. */
function refuseUnknown(applied: readonly number[], migrations: readonly Migration[], where: string): void {
  const known = new Set(migrations.map((m) => m.version));
  const unknown = applied.filter((v) => !known.has(v));
  if (unknown.length === 0) return;
  const latest = migrations.at(-1)?.version ?? 0;
  throw new RackseedError(
    'STORE_MIGRATION',
    `database ${where} has schema version(s) ${unknown.join(', ')} that this rackseed does not know (latest known: ${latest}); ` +
      'it was written by a newer rackseed: upgrade rackseed (every server sharing the database), or restore a backup',
    { url: where, unknown, latest },
  );
}

/**
 * Brings the schema up to date; idempotent. The whole run holds a session advisory lock, so when several servers
 * start at once one migrates and the others wait, then find nothing left to do. Each step is its own transaction
 * (PostgreSQL DDL is transactional): a failed step leaves the schema at the previous version.
 */
export async function migratePostgres(pool: pg.Pool, url: string, migrations: readonly Migration[] = PG_MIGRATIONS): Promise<void> {
  checkOrdered(migrations);
  const where = redactUrl(url);
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_NAMESPACE, MIGRATE_LOCK]);
    try {
      // Under the lock: two servers creating the table at once would otherwise collide in the catalog.
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        applied_at bigint NOT NULL
      )`);
      const applied = await appliedVersions(client);
      refuseUnknown(applied, migrations, where);
      for (const m of migrations) {
        if (applied.includes(m.version)) continue;
        try {
          await client.query('BEGIN');
          await client.query(m.sql);
          await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
          await client.query('COMMIT');
        } catch (e) {
          await client.query('ROLLBACK').catch((rollbackError: Error) => {
            broken = rollbackError;
          });
          throw new RackseedError('STORE_MIGRATION', `migration ${m.version} "${m.name}" failed on ${where}: ${(e as Error).message}`, { url: where, version: m.version }, { cause: e });
        }
      }
    } finally {
      if (!broken) await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, MIGRATE_LOCK]);
    }
  } catch (e) {
    // Rare, and the connection may be mid-transaction or dead: discard it rather than reason about its state.
    broken ??= e as Error;
    throw e;
  } finally {
    client.release(broken);
  }
}

/** The highest applied schema version, 0 for a database rackseed never migrated. */
export async function pgSchemaVersion(pool: pg.Pool): Promise<number> {
  const exists = await pool.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  if (!exists.rows[0]?.t) return 0;
  const r = await pool.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
  return r.rows[0]?.v ?? 0;
}
