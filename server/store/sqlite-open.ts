import Database from 'better-sqlite3';
import { RackseedError } from '../model/errors.js';

/** How long a writer waits for another connection's lock (the CLI reading the same file) before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5_000;

/** Opens the database file with the settings every rackseed connection must have. */
export function openSqliteDatabase(path: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (e) {
    throw unavailable(path, e);
  }
  try {
    // WAL: readers (API, CLI) never block the writer and the writer never blocks them.
    db.pragma('journal_mode = WAL');
    // FULL: a commit is fsynced before better-sqlite3 returns, so when a store promise resolves the write
    // survives a power cut. That is the contract of ObservedStore (a DHCP ACK or an event the API acknowledged
    // must not vanish); NORMAL would be faster but can lose the last commits on power loss in WAL mode.
    db.pragma('synchronous = FULL');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma('foreign_keys = ON');
    return db;
  } catch (e) {
    db.close();
    throw unavailable(path, e);
  }
}

/** The driver's error names neither the file nor its kind ("unable to open database file"): the operator needs both. */
function unavailable(path: string, e: unknown): RackseedError {
  const code = (e as { code?: string }).code;
  return new RackseedError('STORE_UNAVAILABLE', `cannot open the SQLite store ${path}: ${(e as Error).message}${code ? ` (${code})` : ''}`, { path, ...(code ? { sqliteCode: code } : {}) }, { cause: e });
}

export interface SqliteSettings {
  journalMode: string;
  /** 2 = FULL. */
  synchronous: number;
  foreignKeys: boolean;
  busyTimeoutMs: number;
}

/** What the connection actually runs with (pragmas can silently not apply, e.g. WAL on some file systems). */
export function readSettings(db: Database.Database): SqliteSettings {
  return {
    journalMode: String(db.pragma('journal_mode', { simple: true })),
    synchronous: Number(db.pragma('synchronous', { simple: true })),
    foreignKeys: Number(db.pragma('foreign_keys', { simple: true })) === 1,
    busyTimeoutMs: Number(db.pragma('busy_timeout', { simple: true })),
  };
}
