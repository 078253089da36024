import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SERVER_MARKER } from '../backup/layout.js';
import { stillRunning, thisProcess, type ProcessIdentity } from './process-identity.js';

/** What holds a data directory: a server running on it, or a restore writing it. */
export type DataDirRole = 'server' | 'restore';

export interface DataDirHolder extends ProcessIdentity {
  role: DataDirRole;
}

/**
 * `<data_dir>/server.pid`: which process holds this data directory (a server, or a restore writing it), as its PID and
 * start time, so that a process that must not run beside it can tell a live holder from a file left by one that was
 * killed: a PID alone could have been reused by anything since. A marker without a role was written by a server.
 *
 * The marker is made with link(), which fails when the name exists, so two processes cannot both take a free
 * directory. A marker of a dead process is moved aside under a name of this process's own before it is replaced, and
 * what was moved is checked again: a process that took the stale marker over in between keeps its new one.
 *
 * Not covered: processes on other hosts sharing the directory over NFS (/proc is per host), and anything that does
 * not take the marker (an editor, an older rackseed restore: it only reads it).
 */
export function holdDataDir(dataDir: string, role: DataDirRole, refuse: (holder: DataDirHolder) => Error): () => void {
  const me: DataDirHolder = { ...thisProcess(), role };
  const file = path.join(dataDir, SERVER_MARKER);
  const mine = (h: DataDirHolder | undefined) => h?.pid === me.pid && h.startTicks === me.startTicks && h.role === role;
  const release = () => {
    // Only our own: a marker another process took after ours was cleared is not ours to remove.
    if (mine(readMarker(file))) rmSync(file, { force: true });
  };
  // The ".tmp-PID" names are those a backup leaves out (server/backup/layout.ts).
  const tmp = `${file}.tmp-${process.pid}`;
  const aside = `${file}.stale.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(me)}\n`, { mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      let linked = false;
      try {
        linkSync(tmp, file);
        linked = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      if (linked) {
        // Read back: the marker is ours, not one that a process clearing it as stale replaced it with since.
        if (mine(readMarker(file))) return release;
        continue;
      }
      const holder = liveHolder(file);
      if (holder) {
        // In-process servers (tests) may share a directory; only another process is refused.
        if (holder.pid === me.pid && holder.startTicks === me.startTicks && holder.role === 'server' && role === 'server') return () => undefined;
        throw refuse(holder);
      }
      try {
        renameSync(file, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const taken = liveHolder(aside);
      if (taken) {
        // Another process replaced the stale marker between our read and the rename: put its marker back.
        try {
          linkSync(aside, file);
        } finally {
          rmSync(aside, { force: true });
        }
        throw refuse(taken);
      }
      rmSync(aside, { force: true });
    }
    throw new Error(`${file}: could not be taken after 3 attempts (other processes keep replacing it)`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The live process recorded in the data directory's marker (a server or a restore), if there is one. */
export function dataDirHolder(dataDir: string): DataDirHolder | undefined {
  return liveHolder(path.join(dataDir, SERVER_MARKER));
}

/** How a holder reads in an error message. */
export function describeHolder(h: DataDirHolder): string {
  return h.role === 'server' ? `a rackseed server (PID ${h.pid})` : `a rackseed backup restore (PID ${h.pid})`;
}

function liveHolder(file: string): DataDirHolder | undefined {
  const h = readMarker(file);
  return h && stillRunning(h) ? h : undefined;
}

function readMarker(file: string): DataDirHolder | undefined {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<DataDirHolder>;
    if (!Number.isInteger(v.pid) || !Number.isInteger(v.startTicks)) return undefined;
    return { pid: v.pid!, startTicks: v.startTicks!, role: v.role === 'restore' ? 'restore' : 'server' };
  } catch {
    return undefined;
  }
}
