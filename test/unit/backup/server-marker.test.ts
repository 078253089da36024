import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dataDirHolder, holdDataDir, type DataDirHolder } from '../../../server/util/server-marker.js';
import { processStartTicks, thisProcess } from '../../../server/util/process-identity.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const c of children.splice(0)) c.kill('SIGKILL');
});
function dataDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'rackseed-marker-'));
  dirs.push(d);
  return d;
}
const refuse = (h: DataDirHolder) => new Error(`held by ${h.role} ${h.pid}`);

/** A live process other than this one, as a marker would record it. */
function otherProcess(): { pid: number; startTicks: number } {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  children.push(child);
  const startTicks = processStartTicks(child.pid!);
  if (startTicks === undefined) throw new Error('the sleep process is not in /proc');
  return { pid: child.pid!, startTicks };
}

describe('the data directory marker', () => {
  it('names this process while held and nothing once released', () => {
    const dir = dataDir();
    expect(dataDirHolder(dir)).toBeUndefined();
    const release = holdDataDir(dir, 'server', refuse);
    expect(dataDirHolder(dir)).toEqual({ ...thisProcess(), role: 'server' });
    release();
    expect(existsSync(path.join(dir, 'server.pid'))).toBe(false);
    expect(dataDirHolder(dir)).toBeUndefined();
    expect(holdDataDir(dir, 'restore', refuse)).toBeTypeOf('function');
    expect(dataDirHolder(dir)).toEqual({ ...thisProcess(), role: 'restore' });
  });

  it.each([
    ['a live server', 'server', 'server'],
    ['a live restore', 'restore', 'restore'],
    ['a marker without a role (an older server)', undefined, 'server'],
  ])('%s held by another process is refused, and its marker is left alone', (_what, role, seen) => {
    const dir = dataDir();
    const other = otherProcess();
    const text = JSON.stringify({ ...other, ...(role ? { role } : {}) });
    writeFileSync(path.join(dir, 'server.pid'), text);
    expect(dataDirHolder(dir)).toEqual({ ...other, role: seen });
    for (const want of ['server', 'restore'] as const) expect(() => holdDataDir(dir, want, refuse)).toThrow(`held by ${seen} ${other.pid}`);
    expect(readFileSync(path.join(dir, 'server.pid'), 'utf8')).toBe(text);
  });

  it('this process may run two servers on one directory, but not a restore beside its own server', () => {
    const dir = dataDir();
    holdDataDir(dir, 'server', refuse);
    expect(holdDataDir(dir, 'server', refuse)).toBeTypeOf('function');
    expect(() => holdDataDir(dir, 'restore', refuse)).toThrow(`held by server ${process.pid}`);
  });

  it('a marker left by a killed process, naming a reused PID, or unreadable, is replaced', () => {
    const dir = dataDir();
    // A process that has exited: its PID is free (or someone else's, with another start time).
    const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    const other = otherProcess();
    for (const stale of [
      { pid: Number(gone.stdout.trim()), startTicks: 1, role: 'restore' },
      // A live PID with a start time it never had: a reused number.
      { ...other, startTicks: other.startTicks + 1, role: 'server' },
      'garbage',
    ]) {
      writeFileSync(path.join(dir, 'server.pid'), typeof stale === 'string' ? stale : JSON.stringify(stale));
      expect(dataDirHolder(dir)).toBeUndefined();
      const release = holdDataDir(dir, 'restore', refuse);
      expect(dataDirHolder(dir)).toEqual({ ...thisProcess(), role: 'restore' });
      release();
    }
  });

  it('a release does not remove a marker another process wrote since', () => {
    const dir = dataDir();
    const release = holdDataDir(dir, 'server', refuse);
    const other = JSON.stringify({ pid: 1, startTicks: 0 });
    writeFileSync(path.join(dir, 'server.pid'), other);
    release();
    expect(readFileSync(path.join(dir, 'server.pid'), 'utf8')).toBe(other);
  });
});
