import path from 'node:path';
import type { Command } from 'commander';

import { DEFAULT_DATABASE_URL_ENV } from '../../config.js';
import type { GlobalOptions } from '../context.js';
import { UsageError } from '../exit.js';
import { keyValues, printJson } from '../output.js';

function sqlitePathOf(from: string): string {
  const m = /^sqlite:(.+)$/.exec(from);
  if (!m) throw new UsageError(`--from: expected sqlite:PATH, got "${from}"`);
  return path.resolve(m[1]!);
}

/**
 * postgres:URL, or a bare postgres:// URL. "postgres:" alone reads the URL from RACKSEED_DATABASE_URL, which keeps the
 * password off the command line (and out of `ps` and shell history).
 */
function postgresUrlOf(to: string): string {
  if (/^postgres(ql)?:\/\//.test(to)) return to;
  const m = /^postgres:(.*)$/.exec(to);
  if (!m) throw new UsageError(`--to: expected postgres:URL, got "${to}"`);
  const url = m[1] || process.env[DEFAULT_DATABASE_URL_ENV];
  if (!url) throw new UsageError(`--to: no URL after "postgres:" and ${DEFAULT_DATABASE_URL_ENV} is not set`);
  if (!/^postgres(ql)?:\/\//.test(url)) throw new UsageError(`--to: ${DEFAULT_DATABASE_URL_ENV} does not hold a postgres:// or postgresql:// URL`);
  return url;
}

/** Offline administration of the observed-state store: works on the databases directly, never through a server. */
export function registerStore(program: Command, write: (s: string) => void): void {
  const store = program.command('store').description('the observed-state store (node status, events, leases, runs)');
  store
    .command('migrate')
    .description('copy a single server\'s SQLite store into PostgreSQL (stop the server first); verifies row counts')
    .requiredOption('--from <source>', 'sqlite:PATH (the data dir\'s rackseed.db)')
    .requiredOption('--to <target>', `postgres:URL (postgres: alone reads ${DEFAULT_DATABASE_URL_ENV})`)
    .option('--force', 'replace what the target database already holds')
    .action(async (o: { from: string; to: string; force?: boolean }, cmd: Command) => {
      const json = cmd.optsWithGlobals<GlobalOptions>().json === true;
      const sqlitePath = sqlitePathOf(o.from);
      const postgresUrl = postgresUrlOf(o.to);
      // Loaded here: the SQLite and PostgreSQL drivers are not worth loading for every other CLI verb.
      const { copySqliteToPostgres, describeCounts } = await import('../../store/copy.js');
      const { redactUrl } = await import('../../store/postgres-open.js');
      const r = await copySqliteToPostgres({ sqlitePath, postgresUrl, force: o.force === true });
      const to = redactUrl(postgresUrl);
      if (json) return printJson({ json, write }, { from: sqlitePath, to, ...r });
      write(
        `${keyValues([
          ['from', sqlitePath],
          ['to', to],
          ['nodes', r.target.nodes],
          ['events', r.target.events],
          ['leases', r.target.leases],
          ['once-keys', r.target.onceKeys],
          ['runs', r.target.runs],
          ['runs closed', `${r.closedRuns} (recorded as running by the stopped server: copied as failed, RUN_ABANDONED)`],
          ['replaced', describeCounts(r.replaced)],
          ['verified', 'row counts equal in source and target'],
        ])}\n`,
      );
    });
}
