import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { markServerRunning, serverRunningOn } from '../../../server/util/server-marker.js';
import { thisProcess } from '../../../server/util/process-identity.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dataDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'rackseed-marker-'));
  dirs.push(d);
  return d;
}

describe('the data directory marker of a running server', () => {
  it('names this process while marked and nothing once released', () => {
    const dir = dataDir();
    expect(serverRunningOn(dir)).toBeUndefined();
    const release = markServerRunning(dir);
    expect(serverRunningOn(dir)).toEqual(thisProcess());
    release();
    expect(existsSync(path.join(dir, 'server.pid'))).toBe(false);
    expect(serverRunningOn(dir)).toBeUndefined();
  });

  it('a marker left by a killed server, or naming a reused PID, is no running server', () => {
    const dir = dataDir();
    // A process that has exited: its PID is free (or someone else's, with another start time).
    const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    writeFileSync(path.join(dir, 'server.pid'), JSON.stringify({ pid: Number(gone.stdout.trim()), startTicks: 1 }));
    expect(serverRunningOn(dir)).toBeUndefined();
    // This PID with a start time it never had: a reused number.
    writeFileSync(path.join(dir, 'server.pid'), JSON.stringify({ pid: process.pid, startTicks: thisProcess().startTicks + 1 }));
    expect(serverRunningOn(dir)).toBeUndefined();
    writeFileSync(path.join(dir, 'server.pid'), 'garbage');
    expect(serverRunningOn(dir)).toBeUndefined();
  });

  it('a release does not remove a marker another server wrote since', () => {
    const dir = dataDir();
    const release = markServerRunning(dir);
    const other = JSON.stringify({ pid: 1, startTicks: 0 });
    writeFileSync(path.join(dir, 'server.pid'), other);
    release();
    expect(existsSync(path.join(dir, 'server.pid'))).toBe(true);
  });
});
