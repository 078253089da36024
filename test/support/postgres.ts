import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';

import { waitForOutput } from './process-output.js';
import { unusedLoopbackPort } from './ports.js';

/** Debian's PostgreSQL 15 (package postgresql-15). */
const BIN = '/usr/lib/postgresql/15/bin';

export interface PostgresServer {
  /** A URL for `database` on this server (superuser, trust auth on loopback). */
  url(database: string): string;
  /**
   * The same over the server's Unix socket. A socket is a file: processes in other network namespaces (which cannot
   * reach the host's loopback) connect through it.
   */
  socketUrl(database: string): string;
  /** Creates a database (optionally as a copy of `template`) and returns its URL. */
  createDatabase(name: string, template?: string): Promise<string>;
  /** Fast shutdown of this server's postmaster (by its PID) and removal of its directory. Idempotent. */
  stop(): Promise<void>;
}

function postgresIds(): { uid: number; gid: number } {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) throw new Error('no "postgres" system user; run: apt-get install -y --no-install-recommends postgresql-15');
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/**
 * initdb and postgres refuse to run as root. setpriv (unlike runuser) execs in place, so the PID we hold is the
 * postmaster's own; --pdeathsig makes the postmaster shut down fast if the test process dies without stopping it.
 */
function asPostgres(cmd: string, args: string[]): string[] {
  return ['--reuid=postgres', '--regid=postgres', '--init-groups', '--pdeathsig', 'INT', '--', join(BIN, cmd), ...args];
}


function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/**
 * A private PostgreSQL 15 for one test file: its own data directory in a fresh temp dir, listening on 127.0.0.1 on a
 * free port and on a socket in that dir, fsync on (the store's durability is part of what is tested), trust auth.
 */
export async function startPostgres(): Promise<PostgresServer> {
  if (!existsSync(join(BIN, 'postgres'))) {
    throw new Error(`${BIN}/postgres not found; this test needs a real PostgreSQL. Run: apt-get install -y --no-install-recommends postgresql-15`);
  }
  const { uid, gid } = postgresIds();
  const dir = mkdtempSync(join(tmpdir(), 'rackseed-pg-'));
  let child: ChildProcess | undefined;
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    try {
      if (child && child.exitCode === null && child.signalCode === null) {
        // SIGINT = fast shutdown: roll back open transactions, disconnect clients, checkpoint, exit.
        child.kill('SIGINT');
        const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000).unref());
        if ((await Promise.race([exited(child), timeout])) === 'timeout') {
          child.kill('SIGQUIT');
          await exited(child);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  try {
    chownSync(dir, uid, gid);
    const data = join(dir, 'data');
    const sockets = join(dir, 'sockets');
    mkdirSync(sockets);
    chownSync(sockets, uid, gid);
    // --no-sync only skips flushing initdb's own files (this directory is thrown away); the server runs with fsync on.
    const init = spawnSync('setpriv', asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8', '--no-sync', '--no-instructions']), {
      cwd: dir,
      encoding: 'utf8',
    });
    if (init.status !== 0) throw new Error(`initdb failed (${init.status}):\n${init.stderr}${init.stdout}`);

    for (let attempt = 1; ; attempt++) {
      const port = await unusedLoopbackPort();
      const args = ['-D', data, '-p', String(port), '-k', sockets, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=on', '-c', 'synchronous_commit=on', '-c', 'max_connections=200'];
      child = spawn('setpriv', asPostgres('postgres', args), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        await waitForOutput(child, /database system is ready to accept connections/, 30_000, 'postgres');
      } catch (e) {
        // Another process took the port between unusedLoopbackPort() and postgres binding it: try another one.
        if (attempt < 3 && /could not bind|Address already in use/.test(String(e))) continue;
        throw e;
      }
      // Keep draining the log so a chatty server never blocks on a full pipe.
      child.stdout?.resume();
      child.stderr?.resume();
      const url = (database: string): string => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`;
      return {
        url,
        socketUrl: (database) => `postgres://postgres@localhost:${port}/${encodeURIComponent(database)}?host=${encodeURIComponent(sockets)}`,
        async createDatabase(name, template) {
          const admin = new pg.Client({ connectionString: url('postgres') });
          await admin.connect();
          try {
            await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}${template ? ` TEMPLATE ${pg.escapeIdentifier(template)}` : ''}`);
          } finally {
            await admin.end();
          }
          return url(name);
        },
        stop,
      };
    }
  } catch (e) {
    await stop();
    throw e;
  }
}
