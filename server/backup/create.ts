import { closeSync, existsSync, fsyncSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';

import { RackseedError } from '../model/errors.js';
import { PACKAGE_ROOT } from '../paths.js';
import { schemaVersion } from '../store/sqlite-migrate.js';
import type { StoreConfig } from '../store/index.js';
import { isInside } from '../util/inside.js';
import { fsyncPath } from '../util/replace-file.js';
import { BACKUP_FORMAT, BACKUP_FORMAT_VERSION, BACKUP_META_DIR, excludedFromBackup, MANIFEST_ENTRY, STORE_ENTRY, type BackupManifest } from './layout.js';
import { runTar } from './tar.js';

export interface CreateBackupOptions {
  /** The archive to write. */
  file: string;
  dataDir: string;
  store: StoreConfig;
  /** Also take files/images and files/installer. */
  withImages: boolean;
  /** Replace an existing archive. */
  force: boolean;
  now?: () => Date;
}

export interface CreatedBackup {
  file: string;
  manifest: BackupManifest;
  /** Entries of the data directory that are neither files nor directories (symbolic links, sockets): not taken. */
  skipped: string[];
}

/** How long the snapshot waits for the server's write lock; VACUUM INTO only reads, so this is only for a checkpoint. */
const BUSY_TIMEOUT_MS = 10_000;

export function rackseedVersion(): string {
  return (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Writes one gzipped tar of the data directory's state that cannot be rebuilt, safe to take while the server runs:
 * the SQLite store is a snapshot made by `VACUUM INTO` (one read transaction, so consistent, and the server keeps
 * writing meanwhile), never a copy of the live database and WAL files. The archive holds secrets: it is created
 * with mode 0600 from its first byte, written under a temporary name and renamed into place once complete.
 */
export async function createBackup(o: CreateBackupOptions): Promise<CreatedBackup> {
  const file = path.resolve(o.file);
  const dataDir = path.resolve(o.dataDir);
  if (!o.force && existsSync(file)) throw new RackseedError('BACKUP_FAILED', `${file} exists: give --force to replace it`, { file });
  if (!existsSync(dataDir)) throw new RackseedError('BACKUP_FAILED', `the data directory ${dataDir} does not exist: nothing to back up`, { dataDir });
  if (isInside(file, dataDir)) throw new RackseedError('BACKUP_FAILED', `${file} is inside the data directory ${dataDir}: write the backup elsewhere`, { file });

  const stage = mkdtempSync(path.join(tmpdir(), 'rackseed-backup-'));
  try {
    mkdirSync(path.join(stage, BACKUP_META_DIR), { mode: 0o700 });
    const store = snapshotStore(o.store, path.join(stage, STORE_ENTRY));
    // The live store's files are never read as files: the snapshot stands for them.
    const storePath = o.store.kind === 'sqlite' ? path.resolve(o.store.path) : undefined;
    const storeFiles = new Set(storePath === undefined ? [] : ['', '-wal', '-shm', '-journal'].map((suffix) => `${storePath}${suffix}`));
    const walk = walkDataDir(dataDir, o.withImages, storeFiles);
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      formatVersion: BACKUP_FORMAT_VERSION,
      rackseedVersion: rackseedVersion(),
      createdAt: (o.now?.() ?? new Date()).toISOString(),
      dataDir,
      withImages: o.withImages,
      store,
      files: walk.files,
      bytes: walk.bytes,
      contents: [...new Set(walk.entries.map((e) => e.split('/')[0]!))].sort(),
      leftOut: walk.leftOut,
    };
    writeFileSync(path.join(stage, MANIFEST_ENTRY), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
    const list = path.join(stage, 'entries');
    writeFileSync(list, walk.entries.map((e) => `${e}\0`).join(''));

    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
    // 'wx' with 0600: the file never exists with a wider mode, not even before a chmod (the umask only narrows it).
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      try {
        await runTar(
          [
            '--create', '--gzip', '--file=-', '--no-recursion', '--numeric-owner',
            '-C', stage, BACKUP_META_DIR, MANIFEST_ENTRY, ...(store.included ? [STORE_ENTRY] : []),
            '-C', dataDir, '--null', '--verbatim-files-from', `--files-from=${list}`,
          ],
          'BACKUP_FAILED',
          fd,
        );
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      if (o.force) {
        renameSync(tmp, file);
      } else {
        // link() fails on an existing name, so a file that appeared meanwhile is not replaced either.
        try {
          linkSync(tmp, file);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new RackseedError('BACKUP_FAILED', `${file} exists: give --force to replace it`, { file });
          throw e;
        }
        rmSync(tmp);
      }
      fsyncPath(path.dirname(file));
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    return { file, manifest, skipped: walk.skipped };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

function snapshotStore(store: StoreConfig, dest: string): BackupManifest['store'] {
  if (store.kind === 'postgres') {
    return { kind: 'postgres', included: false, reason: 'the PostgreSQL store is not in the data directory: back it up with pg_dump' };
  }
  if (!existsSync(store.path)) return { kind: 'sqlite', included: false, reason: `${store.path} does not exist yet` };
  let db: Database.Database;
  try {
    db = new Database(store.path, { fileMustExist: true });
  } catch (e) {
    throw new RackseedError('BACKUP_FAILED', `cannot open the SQLite store ${store.path}: ${(e as Error).message}`, { path: store.path }, { cause: e });
  }
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.prepare('VACUUM INTO ?').run(dest);
  } catch (e) {
    throw new RackseedError('BACKUP_FAILED', `cannot snapshot the SQLite store ${store.path}: ${(e as Error).message}`, { path: store.path }, { cause: e });
  } finally {
    db.close();
  }
  const snap = new Database(dest, { readonly: true, fileMustExist: true });
  try {
    const count = (table: string) => (snap.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    return { kind: 'sqlite', included: true, schemaVersion: schemaVersion(snap), nodes: count('node_status'), leases: count('leases') };
  } finally {
    snap.close();
  }
}

interface Walk {
  /** Paths relative to the data directory, parents before children. */
  entries: string[];
  files: number;
  bytes: number;
  leftOut: string[];
  skipped: string[];
}

function walkDataDir(dataDir: string, withImages: boolean, storeFiles: Set<string>): Walk {
  const walk: Walk = { entries: [], files: 0, bytes: 0, leftOut: [], skipped: [] };
  const visit = (rel: string) => {
    for (const d of readdirSync(path.join(dataDir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const child = rel === '' ? d.name : `${rel}/${d.name}`;
      const abs = path.join(dataDir, child);
      if (storeFiles.has(abs)) continue;
      // A name the restore would refuse (see archiveProblems) is not taken, and said so, rather than making an
      // archive that cannot be restored. readdir gives U+FFFD for bytes that are not UTF-8.
      if (/[\\\x00-\x1f\x7f\ufffd]/.test(d.name)) {
        walk.skipped.push(`${JSON.stringify(child)}: a name with control characters, a backslash or bytes that are not UTF-8, not taken`);
        continue;
      }
      const why = excludedFromBackup(child, withImages);
      if (why !== undefined) {
        if (!/temporary/.test(why) && child.split('/').length <= 2) walk.leftOut.push(`${child}: ${why}`);
        continue;
      }
      if (d.isDirectory()) {
        walk.entries.push(child);
        visit(child);
      } else if (d.isFile()) {
        walk.entries.push(child);
        walk.files += 1;
        walk.bytes += lstatSync(abs).size;
      } else {
        walk.skipped.push(`${child}: ${d.isSymbolicLink() ? 'a symbolic link' : 'neither a file nor a directory'}, not taken`);
      }
    }
  };
  visit('');
  return walk;
}
