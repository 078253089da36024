import { chmodSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { isRackseedError, RackseedError } from '../model/errors.js';
import { MIGRATIONS } from '../store/migrations/index.js';
import type { StoreConfig } from '../store/index.js';
import { fsyncPath } from '../util/replace-file.js';
import { dataDirHolder, describeHolder, holdDataDir, type DataDirHolder } from '../util/server-marker.js';
import { RestoreJournal, type StepHook } from './journal.js';
import { archiveProblems, BACKUP_META_DIR, MANIFEST_ENTRY, parseManifest, restoredMode, SERVER_MARKER, STORE_ENTRY, type ArchiveEntry, type BackupManifest } from './layout.js';
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
  /** Tests: called before each change to the data directory or the store (and each step undoing one). */
  step?: StepHook;
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
  /** Rollback directories holding the replaced originals that could not be removed after a restore that succeeded. */
  leftOver?: string[];
}

const SHOWN = 5;

/**
 * Restores a backup into the configured data directory (and the SQLite snapshot to `store.path`). The archive is
 * checked whole before anything is written: an entry that could land outside the data directory is refused, never
 * stripped. It refuses to run beside a live server on that directory, and to replace existing state without `force`.
 * While it writes it holds the directory (its marker stops a server from starting), and it is all or nothing: every
 * change goes through a RestoreJournal, which keeps what it replaces and undoes everything when a step fails.
 */
export async function restoreBackup(o: RestoreBackupOptions): Promise<RestorePlan> {
  const file = path.resolve(o.file);
  const dataDir = path.resolve(o.dataDir);
  if (!existsSync(file)) throw new RackseedError('BACKUP_INVALID', `${file} does not exist`, { file });

  const holder = dataDirHolder(dataDir);
  if (holder) throw refusedBeside(holder, dataDir);
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
  const replaced = existingState(dataEntries, dataDir, storeTo);
  refuseUnforced(replaced, o.force);
  const plan: RestorePlan = { manifest, entries: dataEntries.map((e) => e.name), ...(storeTo !== undefined ? { storeTo } : {}), replaced, written: false };
  if (!o.yes) return plan;

  // The data directory (and the directories above it) is made through the journal: a failed restore removes it again.
  const journal = new RestoreJournal(dataDir, o.step);
  let release: (() => void) | undefined;
  // Staged beside the data directory, on its file system, so every file is renamed into place, never half-copied.
  let stage: string | undefined;
  const dropStage = () => {
    if (stage !== undefined) rmSync(stage, { recursive: true, force: true });
    stage = undefined;
  };
  try {
    await journal.mkdirs(dataDir, 0o700);
    // Held for the whole restore: a server that starts meanwhile is refused instead of opening a half-placed store.
    release = holdDataDir(dataDir, 'restore', (h) => refusedBeside(h, dataDir));
    // Undone in turn: after every file is back, before a data directory the restore made is removed again.
    journal.onUndo(`release ${path.join(dataDir, SERVER_MARKER)}`, release);
    // Checked again under the hold: a server that ran between the first check and now may have made files.
    const now = existingState(dataEntries, dataDir, storeTo);
    refuseUnforced(now, o.force);
    plan.replaced = now;
    stage = mkdtempSync(path.join(path.dirname(dataDir), `.${path.basename(dataDir)}.restore-`));
    await runTar(['--extract', '--gzip', `--file=${file}`, '-C', stage, '--no-same-owner', '--preserve-permissions'], 'BACKUP_INVALID');
    for (const e of dataEntries) await install(journal, stage, dataDir, e.type === 'd' ? e.name.replace(/\/$/, '') : e.name, e.type === 'd');
    if (storeTo !== undefined) {
      const snapshot = path.join(stage, STORE_ENTRY);
      fsyncPath(snapshot);
      await journal.mkdirs(path.dirname(storeTo), 0o700);
      // An old WAL beside the restored database would be replayed into it when it is next opened: kept aside with it.
      for (const suffix of ['-wal', '-shm', '-journal']) await journal.keep(`${storeTo}${suffix}`);
      await journal.place(snapshot, storeTo);
    }
    journal.flush();
  } catch (e) {
    // First: it sits in the data directory's parent, which the rollback removes when the restore made it.
    dropStage();
    throw await undone(e, journal);
  } finally {
    dropStage();
  }
  const leftOver = journal.discardOriginals();
  release!();
  return { ...plan, written: true, ...(leftOver.length > 0 ? { leftOver } : {}) };
}

/** The failure, after every change was undone (and the hold released), saying whether the undoing was complete. */
async function undone(e: unknown, journal: RestoreJournal): Promise<Error> {
  // A refusal under the hold changed nothing but the (empty) directories the journal made: it stands as it is.
  const refused = isRackseedError(e) && e.code === 'BACKUP_REFUSED';
  const left = await journal.rollback();
  const why = e instanceof Error ? e.message : String(e);
  if (left.length === 0) {
    if (refused) return e as Error;
    return new RackseedError('BACKUP_FAILED', `the restore failed and was undone, nothing was changed: ${why}`, { reason: why }, { cause: e });
  }
  return new RackseedError(
    'BACKUP_FAILED',
    `the restore failed (${why}) and could not be undone completely; finish by hand:\n  ${left.join('\n  ')}`,
    { reason: why, left },
    { cause: e },
  );
}

/** What already exists and the restore would replace: files of the archive, and the store with its companions. */
function existingState(dataEntries: ArchiveEntry[], dataDir: string, storeTo: string | undefined): string[] {
  return [
    ...dataEntries.filter((e) => e.type === '-' && existsSync(path.join(dataDir, e.name))).map((e) => path.join(dataDir, e.name)),
    ...(storeTo !== undefined && existsSync(storeTo) ? [storeTo] : []),
  ];
}

function refuseUnforced(replaced: string[], force: boolean): void {
  if (replaced.length === 0 || force) return;
  const more = replaced.length > SHOWN ? ` and ${replaced.length - SHOWN} more` : '';
  throw new RackseedError('BACKUP_REFUSED', `the restore would replace existing state (${replaced.slice(0, SHOWN).join(', ')}${more}): give --force to replace it`, { replaced });
}

function refusedBeside(h: DataDirHolder, dataDir: string): RackseedError {
  return h.role === 'server'
    ? new RackseedError('BACKUP_REFUSED', `${describeHolder(h)} is running on ${dataDir}: stop it before restoring`, { pid: h.pid })
    : new RackseedError('BACKUP_REFUSED', `${describeHolder(h)} is already writing ${dataDir}: wait for it to finish`, { pid: h.pid });
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
async function install(journal: RestoreJournal, stage: string, dataDir: string, rel: string, isDirectory: boolean): Promise<void> {
  const from = path.join(stage, rel);
  const st = lstatSync(from);
  // The listing was checked; this checks what tar actually made.
  if (isDirectory ? !st.isDirectory() : !st.isFile()) throw new RackseedError('BACKUP_INVALID', `${rel}: tar extracted something else than the archive listed`);
  const to = path.join(dataDir, rel);
  const mode = restoredMode(rel, st.mode, isDirectory);
  if (isDirectory) {
    await journal.mkdirs(to, mode);
    await journal.chmod(to, mode);
    return;
  }
  chmodSync(from, mode);
  fsyncPath(from);
  await journal.mkdirs(path.dirname(to), 0o700);
  await journal.place(from, to);
}
