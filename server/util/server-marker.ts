import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SERVER_MARKER } from '../backup/layout.js';
import { stillRunning, thisProcess, type ProcessIdentity } from './process-identity.js';

/**
 * `<data_dir>/server.pid`: which process serves this data directory, as its PID and start time, so that a tool that
 * must not run beside a server (a restore) can tell a live server from a file left by one that was killed: a PID
 * alone could have been reused by anything since.
 */
export function markServerRunning(dataDir: string): () => void {
  const me = thisProcess();
  const file = path.join(dataDir, SERVER_MARKER);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(me)}\n`, { mode: 0o644 });
  renameSync(tmp, file);
  return () => {
    // Another server started on this directory since (it is refused nothing): its marker is not ours to remove.
    const owner = readMarker(file);
    if (owner?.pid === me.pid && owner.startTicks === me.startTicks) rmSync(file, { force: true });
  };
}

/** The live server process recorded in the data directory, if there is one. */
export function serverRunningOn(dataDir: string): ProcessIdentity | undefined {
  const owner = readMarker(path.join(dataDir, SERVER_MARKER));
  return owner && stillRunning(owner) ? owner : undefined;
}

function readMarker(file: string): ProcessIdentity | undefined {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<ProcessIdentity>;
    return Number.isInteger(v.pid) && Number.isInteger(v.startTicks) ? { pid: v.pid!, startTicks: v.startTicks! } : undefined;
  } catch {
    return undefined;
  }
}
