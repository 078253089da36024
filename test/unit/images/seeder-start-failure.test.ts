import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { ImageRecord } from '../../../server/model/image.js';
import { waitFor } from '../../support/wait.js';

/**
 * Failure injection: the seeder process cannot be started. fork() throws for some errors (ENOMEM) and reports others
 * (EAGAIN, EMFILE, ENOENT) as an 'error' event on a process that has no pid and never exits. Both must leave the
 * server up, the seeder reported down, and a restart scheduled. A fake child stands in for the forks (a real fork
 * cannot be made to fail on demand); the restart path itself is the real one.
 */
const forks: Array<() => unknown> = [];
vi.mock('node:child_process', async (importOriginal) => ({
  ...(await importOriginal<typeof import('node:child_process')>()),
  fork: vi.fn(() => {
    const next = forks.shift();
    if (!next) throw new Error('unexpected fork');
    return next();
  }),
}));
const { startSeeder } = await import('../../../server/images/seeder.js');

class FakeChild extends EventEmitter {
  connected = true;
  exitCode: number | null = null;
  signalCode: string | null = null;
  constructor(readonly pid: number | undefined) {
    super();
  }
  send(): boolean {
    return true;
  }
  kill(): boolean {
    this.exitCode = 0;
    queueMicrotask(() => this.emit('exit', 0, null));
    return true;
  }
}

const image = { manifest: { name: 'img', torrent: { infoHash: 'a'.repeat(40), file: 'x.torrent' } }, dir: '/nonexistent', urlPath: '/files/images/img' } as unknown as ImageRecord;

function logged(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), cb()) });
  return { log: pino({ level: 'info' }, sink), lines };
}

describe('seeder that cannot be started', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    forks.length = 0;
  });

  it('fork throwing (ENOMEM) and a spawn error without a pid (EAGAIN) are logged, reported down and retried; then it runs', async () => {
    const { log, lines } = logged();
    let started: FakeChild | undefined;
    forks.push(
      () => {
        throw Object.assign(new Error('spawn ENOMEM'), { code: 'ENOMEM' });
      },
      () => {
        const c = new FakeChild(undefined);
        setTimeout(() => c.emit('error', Object.assign(new Error('spawn EAGAIN'), { code: 'EAGAIN' })), 0);
        return c;
      },
      () => (started = new FakeChild(4242)),
    );
    const seeder = startSeeder({ port: 0, announce: 'http://127.0.0.1:9/announce', uploadSlots: 4, superSeed: true, restartSeconds: 0.02, hungSeconds: 30, log });
    close = () => seeder.close();

    seeder.setImages([image]);
    // Before: the throw escaped setImages (and at a restart, the timer: an uncaught exception).
    expect(seeder.status()).toMatchObject({ running: false, restarts: 1 });
    expect(lines.find((l) => l.msg === 'seeder could not be started; nodes use peers and the web seed until it is')).toMatchObject({ err: 'spawn ENOMEM' });

    // The retry gets the async failure: no pid, no exit. Before, this child counted as running and was never replaced.
    await waitFor('the async spawn failure', () => lines.some((l) => l.err === 'spawn EAGAIN'));
    expect(seeder.status()).toMatchObject({ running: false, restarts: 2 });
    expect(seeder.status()).not.toHaveProperty('pid');

    // The third try starts: it is up once it reports.
    await waitFor('the third fork', () => started);
    started!.emit('message', { type: 'stats', torrents: [] });
    expect(seeder.status()).toMatchObject({ running: true, pid: 4242, restarts: 2 });
  });
});
