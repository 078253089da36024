import { chmodSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';

import { isInside } from '../util/inside.js';
import { fsyncPath } from '../util/replace-file.js';

/** Called before each change the journal makes, with what it is about to do; what it throws fails that change (tests). */
export type StepHook = (what: string) => void | Promise<void>;

type Change =
  | { kind: 'mkdir'; dir: string }
  | { kind: 'chmod'; path: string; mode: number }
  /** An existing file moved into the rollback directory before its name is reused. */
  | { kind: 'kept'; path: string; kept: string }
  /** A file placed where nothing was. */
  | { kind: 'added'; path: string }
  /** Something else to undo at this point of the rollback. */
  | { kind: 'call'; what: string; undo: () => void };

/**
 * The changes a restore makes to the data directory and the store, each recorded as it is made, so that a failure
 * at any step can undo all of them: nothing is overwritten or deleted, an existing file is first moved into a
 * rollback directory on its own file system (beside the data directory, mirroring its paths, or beside the store
 * file), and those originals are removed only by `discardOriginals`, once everything is in place and flushed. A restore
 * killed outright (SIGKILL, power) cannot undo anything: its rollback directory is left for the operator.
 */
export class RestoreJournal {
  private readonly changes: Change[] = [];
  /** Rollback directory per root (the data directory, or the store's directory), made on first use. */
  private readonly rollbackDirs = new Map<string, string>();
  /** Directories whose entries changed: flushed before the originals go. */
  private readonly touched = new Set<string>();

  constructor(
    private readonly dataDir: string,
    private readonly step: StepHook = () => undefined,
  ) {}

  /** Has `undo` run when the rollback reaches this point (changes made after it are undone before). */
  onUndo(what: string, undo: () => void): void {
    this.changes.push({ kind: 'call', what, undo });
  }

  /** Like `mkdir -p`, each directory made recorded; an existing non-directory in the way fails. */
  async mkdirs(dir: string, mode: number): Promise<void> {
    const missing: string[] = [];
    for (let d = dir; !exists(d); d = path.dirname(d)) missing.unshift(d);
    if (missing.length === 0 && !lstatSync(dir).isDirectory()) throw new Error(`${dir} exists and is not a directory`);
    for (const d of missing) {
      await this.step(`mkdir ${d}`);
      mkdirSync(d, { mode });
      this.changes.push({ kind: 'mkdir', dir: d });
      // The mode asked for, not the one the umask left.
      chmodSync(d, mode);
      this.touched.add(path.dirname(d));
    }
  }

  /** Sets a directory's mode, recording the one it had. */
  async chmod(p: string, mode: number): Promise<void> {
    const before = statSync(p).mode & 0o7777;
    if (before === mode) return;
    await this.step(`chmod ${p}`);
    chmodSync(p, mode);
    this.changes.push({ kind: 'chmod', path: p, mode: before });
  }

  /** Moves a staged file to `to` (same file system), keeping whatever was at `to` first. */
  async place(from: string, to: string): Promise<void> {
    const had = await this.keep(to);
    await this.step(`rename ${from} -> ${to}`);
    renameSync(from, to);
    if (!had) this.changes.push({ kind: 'added', path: to });
    this.touched.add(path.dirname(to));
  }

  /** Takes a file out of the way (kept, not deleted); true when there was one. */
  async keep(p: string): Promise<boolean> {
    if (!exists(p)) return false;
    if (lstatSync(p).isDirectory()) throw new Error(`${p} is a directory where the backup has a file`);
    const kept = this.keptPath(p);
    mkdirSync(path.dirname(kept), { recursive: true, mode: 0o700 });
    await this.step(`keep ${p} -> ${kept}`);
    renameSync(p, kept);
    this.changes.push({ kind: 'kept', path: p, kept });
    this.touched.add(path.dirname(p));
    return true;
  }

  /** Flushes every directory whose entries changed: the last step of a restore, before the originals may go. */
  flush(): void {
    for (const d of this.touched) fsyncPath(d);
  }

  /**
   * Removes the kept originals, once everything is in place and flushed. Returns the rollback directories that could
   * not be removed (the restore itself is complete: they only hold what it replaced).
   */
  discardOriginals(): string[] {
    const left: string[] = [];
    for (const dir of this.rollbackDirs.values()) {
      try {
        rmSync(dir, { recursive: true, force: true });
        fsyncPath(path.dirname(dir));
      } catch (e) {
        left.push(`${dir} (${(e as Error).message})`);
      }
    }
    return left;
  }

  /**
   * Undoes every change, last first: originals go back to their names (over what the restore put there), files the
   * restore added are removed, directories it made are removed, modes are put back. Returns what could not be undone,
   * one line each saying where things are; empty when the data directory and the store are as they were.
   */
  async rollback(): Promise<string[]> {
    const left: string[] = [];
    for (const c of this.changes.reverse()) {
      try {
        switch (c.kind) {
          case 'kept':
            await this.step(`rollback: rename ${c.kept} -> ${c.path}`);
            renameSync(c.kept, c.path);
            break;
          case 'added':
            await this.step(`rollback: unlink ${c.path}`);
            unlinkSync(c.path);
            break;
          case 'mkdir':
            await this.step(`rollback: rmdir ${c.dir}`);
            rmdirSync(c.dir);
            break;
          case 'chmod':
            await this.step(`rollback: chmod ${c.path}`);
            chmodSync(c.path, c.mode);
            break;
          case 'call':
            c.undo();
            continue;
        }
        this.touched.add(path.dirname(c.kind === 'mkdir' ? c.dir : c.path));
      } catch (e) {
        const why = (e as Error).message;
        if (c.kind === 'kept') left.push(`${c.path}: the original is at ${c.kept} (${why})`);
        else if (c.kind === 'added') left.push(`${c.path}: written by the restore, not removed (${why})`);
        else if (c.kind === 'mkdir') left.push(`${c.dir}: made by the restore, not removed (${why})`);
        else if (c.kind === 'chmod') left.push(`${c.path}: its mode was ${c.mode.toString(8)}, not put back (${why})`);
        else left.push(`${c.what}: failed (${why})`);
      }
    }
    this.changes.length = 0;
    for (const d of this.touched) {
      try {
        fsyncPath(d);
      } catch {
        // A directory the rollback removed.
      }
    }
    // Empty when every original went back; otherwise kept for the operator.
    if (left.length === 0) for (const dir of this.rollbackDirs.values()) rmSync(dir, { recursive: true, force: true });
    return left;
  }

  private keptPath(p: string): string {
    const root = isInside(p, this.dataDir) ? this.dataDir : path.dirname(p);
    let dir = this.rollbackDirs.get(root);
    if (dir === undefined) {
      // Beside the data directory (where the restore stages too), or inside the store's own directory: both on the
      // file system of what they keep, so keeping is a rename.
      const base = root === this.dataDir ? path.join(path.dirname(root), `.${path.basename(root)}.rollback-`) : path.join(root, '.rackseed-restore.rollback-');
      dir = mkdtempSync(base);
      this.rollbackDirs.set(root, dir);
    }
    return path.join(dir, path.relative(root, p));
  }
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
