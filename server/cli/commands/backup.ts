import { isIPv6 } from 'node:net';
import type { Command } from 'commander';

import { loadConfig, type Config } from '../../config.js';
import type { GlobalOptions } from '../context.js';
import { keyValues, printJson } from '../output.js';

const HEALTH_TIMEOUT_MS = 1_500;

/**
 * The configured HTTP address when a rackseed server of this configuration's name answers /healthz there. The data
 * directory's marker is the first check; this one also catches a server started before that marker existed.
 */
async function configuredServerAnswers(config: Config): Promise<string | undefined> {
  if (!config.http.enabled || config.http.port === 0) return undefined;
  const host = config.http.listen === '0.0.0.0' || config.http.listen === '::' ? '127.0.0.1' : config.http.listen;
  const url = `http://${isIPv6(host) ? `[${host}]` : host}:${config.http.port}/healthz`;
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    const body = (await r.json()) as { ok?: unknown; server?: unknown };
    return body.ok === true && body.server === config.serverName ? url : undefined;
  } catch {
    return undefined;
  }
}

function size(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;
}

/** Backing up and restoring the server's own state; runs on the server host from its configuration, like `store migrate`. */
export function registerBackup(program: Command, write: (s: string) => void): void {
  const backup = program.command('backup').description('back up and restore the server\'s state (keys, secrets, tokens, the SQLite store)');
  backup
    .command('create')
    .description('write the data directory\'s state into one archive (mode 0600); safe while the server runs')
    .argument('<file>', 'the archive to write (.tar.gz)')
    .option('--with-images', 'also take files/images and files/installer (rebuildable, often gigabytes)')
    .option('--force', 'replace FILE if it exists')
    .action(async (file: string, o: { withImages?: boolean; force?: boolean }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const config = loadConfig(opts.config);
      // Loaded here: better-sqlite3 is not worth loading for every other CLI verb.
      const { createBackup } = await import('../../backup/create.js');
      const r = await createBackup({ file, dataDir: config.dataDir, store: config.store, withImages: o.withImages === true, force: o.force === true });
      const m = r.manifest;
      if (opts.json === true) return printJson({ json: true, write }, { file: r.file, manifest: m, skipped: r.skipped });
      write(
        `${keyValues([
          ['file', `${r.file} (mode 0600: it holds secrets)`],
          ['data dir', m.dataDir],
          ['files', `${m.files} (${size(m.bytes)})`],
          ['contents', m.contents.join(', ') || '-'],
          ['store', m.store.included ? `SQLite snapshot, schema version ${m.store.schemaVersion}, ${m.store.nodes} node(s), ${m.store.leases} lease(s)` : `not included: ${m.store.reason}`],
          ...m.leftOut.map((l): [string, string] => ['left out', l]),
          ...r.skipped.map((s): [string, string] => ['skipped', s]),
        ])}\n`,
      );
    });
  backup
    .command('restore')
    .description('restore an archive into the configured data directory (stop the server first); a dry run without --yes')
    .argument('<file>', 'an archive written by rackseed backup create')
    .option('--yes', 'write (without it: list what would be written)')
    .option('--force', 'replace an existing store and existing files')
    .action(async (file: string, o: { yes?: boolean; force?: boolean }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const config = loadConfig(opts.config);
      const { restoreBackup } = await import('../../backup/restore.js');
      const r = await restoreBackup({
        file,
        dataDir: config.dataDir,
        store: config.store,
        yes: o.yes === true,
        force: o.force === true,
        serverAnswers: () => configuredServerAnswers(config),
      });
      if (opts.json === true) return printJson({ json: true, write }, r);
      const m = r.manifest;
      write(
        `${keyValues([
          ['backup', `${m.createdAt}, rackseed ${m.rackseedVersion}, from ${m.dataDir}`],
          ['data dir', config.dataDir],
          ['store', r.storeTo !== undefined ? `${r.storeTo} (schema version ${m.store.included ? m.store.schemaVersion : '-'})` : `not in the backup: ${m.store.included ? '' : m.store.reason}`],
          ['replaced', r.replaced.length > 0 ? `${r.replaced.length} existing file(s)` : 'nothing'],
          ...(r.leftOver ?? []).map((d): [string, string] => ['left over', `${d}: the replaced originals, not removed (remove it by hand)`]),
        ])}\n`,
      );
      write(`${r.written ? 'restored' : 'would restore'}:\n${r.entries.map((e) => `  ${e}\n`).join('')}`);
      if (!r.written) write('dry run: nothing written (--yes restores)\n');
    });
}
