import type Database from 'better-sqlite3';

import { RackseedError } from '../model/errors.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';

/** Fails fast on a programming mistake in the list rather than half-migrating a database. */
function checkOrdered(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    const prev = migrations[i - 1];
    if (!Number.isInteger(m.version) || m.version < 1 || (prev && m.version <= prev.version)) {
      throw new RackseedError('STORE_MIGRATION', `migration list is not strictly ascending at "${m.name}" (version ${m.version})`, {
        version: m.version,
      });
    }
  });
}

function appliedVersions(db: Database.Database): number[] {
  const rows = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
  return rows.map((r) => r.version);
}

/** A database touched by newer code (or by a branch with migrations we never shipped) must not be written by us. */
function refuseUnknown(applied: readonly number[], migrations: readonly Migration[], path: string): void {
  const known = new Set(migrations.map((m) => m.version));
  const unknown = applied.filter((v) => !known.has(v));
  if (unknown.length === 0) return;
  const latest = migrations.at(-1)?.version ?? 0;
  throw new RackseedError(
    'STORE_MIGRATION',
    `database ${path} has schema version(s) ${unknown.join(', ')} that this rackseed does not know (latest known: ${latest}); ` +
      'it was written by a newer rackseed: upgrade rackseed, or restore a backup',
    { path, unknown, latest },
  );
}

/**
 * Brings the schema up to date. Idempotent. Each migration runs in its own IMMEDIATE transaction and re-reads the
 * applied versions inside it, so two processes starting at once cannot both apply the same step.
 */
export function migrateSqlite(db: Database.Database, path: string, migrations: readonly Migration[] = MIGRATIONS): void {
  checkOrdered(migrations);
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  refuseUnknown(appliedVersions(db), migrations, path);

  for (const m of migrations) {
    const apply = db.transaction(() => {
      const applied = appliedVersions(db);
      refuseUnknown(applied, migrations, path);
      if (applied.includes(m.version)) return;
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
    });
    try {
      apply.immediate();
    } catch (e) {
      if (e instanceof RackseedError) throw e;
      throw new RackseedError('STORE_MIGRATION', `migration ${m.version} "${m.name}" failed on ${path}: ${(e as Error).message}`, {
        path,
        version: m.version,
      }, { cause: e });
    }
  }
}

/** The highest applied schema version, 0 for an empty database. */
export function schemaVersion(db: Database.Database): number {
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null } | undefined;
  return row?.v ?? 0;
}
