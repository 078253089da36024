import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { RackseedError } from '../model/errors.js';
import { MIGRATIONS } from '../store/migrations/index.js';
import type { StoreConfig } from '../store/index.js';
import { fsyncPath } from '../util/replace-file.js';
import { serverRunningOn } from '../util/server-marker.js';
import { archiveProblems, BACKUP_META_DIR, MANIFEST_ENTRY, parseManifest, restoredMode, STORE_ENTRY, type BackupManifest } from './layout.js';
import { listArchive, runTar } from './tar.js';

export interface RestoreBackupOptions {
  file: string;
  dataDir: string;
  store: StoreConfig;
  /** Write; without it, only say what would be written. */
  yes: boolean;
  /** Replace files and a store that already exist. */
  force: boolean;
  /** Asks whether a server answers on the configured HTTP address (for servers older than the data directory marker). */
  serverAnswers?: () => Promise<string | undefined>;
}

export interface RestorePlan {
  manifest: BackupManifest;
  /** Paths below the data directory, directories ending in "/". */
  entries: string[];
  /** Where the store snapshot goes, when the backup holds one. */
  storeTo?: string;
  /** What exists already and is replaced (only with force). */
  replaced: string[];
  written: boolean;
}

const SHOWN = 5;

/**
 * Restores a backup into the configured data directory (and the SQLite snapshot to `store.path`). The archive is
 * checked whole before anything is written: an entry that could land outside the data directory is refused, never
 * stripped. It refuses to run beside a live server on that directory, and to replace existing state without `force`.
 */
export async function restoreBackup(o: RestoreBackupOptions): Promise<RestorePlan> {
  const file = path.resolve(o.file);
  const dataDir = path.resolve(o.dataDir);
  if (!existsSync(file)) throw new RackseedError('BACKUP_INVALID', `${file} does not exist`, { file });

  const running = serverRunningOn(dataDir);
  if (running) throw new RackseedError('BACKUP_REFUSED', `a rackseed server (PID ${running.pid}) is running on ${dataDir}: stop it before restoring`, { pid: running.pid });
  const answering = await o.serverAnswers?.();
  if (answering) throw new RackseedError('BACKUP_REFUSED', `a rackseed server answers at ${answering}: stop it before restoring`, { url: answering });

  const entries = await listArchive(file);
  const problems = archiveProblems(entries);
  if (problems.length > 0) {
    const more = problems.length > SHOWN ? ` (and ${problems.length - SHOWN} more)` : '';
    throw new RackseedError('BACKUP_INVALID', `${file} is refused, nothing was written: ${problems.slice(0, SHOWN).join('; ')}${more}`, { problems });
  }
  const manifest = await readManifest(file);
  const storeIncluded = entries.some((e) => e.name === STORE_ENTRY);
  if (storeIncluded !== (manifest.store.included === true)) throw new RackseedError('BACKUP_INVALID', `${file}: the manifest and the archive disagree on whether the store is in it`);
  if (manifest.store.included) {
    const latest = MIGRATIONS.at(-1)?.version ?? 0;
    if (manifest.store.schemaVersion > latest) {
      throw new RackseedError('BACKUP_REFUSED', `${file} holds a store of schema version ${manifest.store.schemaVersion}, newer than this rackseed knows (${latest}): restore it with rackseed ${manifest.rackseedVersion} or newer`);
    }
    if (o.store.kind !== 'sqlite') {
      throw new RackseedError('BACKUP_REFUSED', `${file} holds an SQLite store but this configuration uses PostgreSQL: restore with an SQLite configuration, then copy it with rackseed store migrate`);
    }
  }

  const dataEntries = entries.filter((e) => e.name.split('/')[0] !== BACKUP_META_DIR);
  const storeTo = manifest.store.included && o.store.kind === 'sqlite' ? path.resolve(o.store.path) : undefined;
  const replaced = [
    ...dataEntries.filter((e) => e.type === '-' && existsSync(path.join(dataDir, e.name))).map((e) => path.join(dataDir, e.name)),
    ...(storeTo !== undefined && existsSync(storeTo) ? [storeTo] : []),
  ];
  if (replaced.length > 0 && !o.force) {
    const more = replaced.length > SHOWN ? ` and ${replaced.length - SHOWN} more` : '';
    throw new RackseedError('BACKUP_REFUSED', `the restore would replace existing state (${replaced.slice(0, SHOWN).join(', ')}${more}): give --force to replace it`, { replaced });
  }
  const plan: RestorePlan = { manifest, entries: dataEntries.map((e) => e.name), ...(storeTo !== undefined ? { storeTo } : {}), replaced, written: false };
  if (!o.yes) return plan;

  // Staged beside the data directory, on its file system, so every file is renamed into place, never half-copied.
  const parent = path.dirname(dataDir);
  mkdirSync(parent, { recursive: true });
  const stage = mkdtempSync(path.join(parent, `.${path.basename(dataDir)}.restore-`));
  try {
    await runTar(['--extract', '--gzip', `--file=${file}`, '-C', stage, '--no-same-owner', '--preserve-permissions'], 'BACKUP_INVALID');
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    for (const e of dataEntries) install(stage, dataDir, e.type === 'd' ? e.name.replace(/\/$/, '') : e.name, e.type === 'd');
    if (storeTo !== undefined) {
      const snapshot = path.join(stage, STORE_ENTRY);
      fsyncPath(snapshot);
      mkdirSync(path.dirname(storeTo), { recursive: true, mode: 0o700 });
      // An old WAL beside the restored database would be replayed into it when it is next opened.
      for (const suffix of ['-wal', '-shm', '-journal']) rmSync(`${storeTo}${suffix}`, { force: true });
      renameSync(snapshot, storeTo);
    }
    fsyncPath(dataDir);
    return { ...plan, written: true };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

async function readManifest(file: string): Promise<BackupManifest> {
  const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-restore-'));
  try {
    await runTar(['--extract', '--gzip', `--file=${file}`, '-C', dir, '--no-same-owner', MANIFEST_ENTRY], 'BACKUP_INVALID');
    const m = parseManifest(readFileSync(path.join(dir, MANIFEST_ENTRY), 'utf8'));
    if ('error' in m) throw new RackseedError('BACKUP_INVALID', `${file}: ${m.error}`);
    return m;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Moves one staged entry into the data directory with the mode it must have; directories are made, not replaced. */
function install(stage: string, dataDir: string, rel: string, isDirectory: boolean): void {
  const from = path.join(stage, rel);
  const st = lstatSync(from);
  // The listing was checked; this checks what tar actually made.
  if (isDirectory ? !st.isDirectory() : !st.isFile()) throw new RackseedError('BACKUP_INVALID', `${rel}: tar extracted something else than the archive listed`);
  const to = path.join(dataDir, rel);
  const mode = restoredMode(rel, st.mode, isDirectory);
  if (isDirectory) {
    mkdirSync(to, { recursive: true, mode });
    chmodSync(to, mode);
    return;
  }
  chmodSync(from, mode);
  fsyncPath(from);
  mkdirSync(path.dirname(to), { recursive: true, mode: 0o700 });
  renameSync(from, to);
}
