import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildProgram } from '../../server/cli/program.js';
import { TSX_IMPORT } from './tsx.js';

/** The `rackseed` entry point, as an operator runs it. */
export const CLI_MAIN = path.resolve(import.meta.dirname, '../../server/cli/main.ts');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process against a test server (its URL and admin token) and returns what it printed. */
export async function cliAgainst(server: { httpUrl: string; adminToken: string }, args: readonly string[]): Promise<string> {
  let out = '';
  const program = buildProgram((s) => {
    out += s;
  });
  await program.parseAsync(['node', 'rackseed', '--server', server.httpUrl, '--token', server.adminToken, ...args]);
  return out;
}

/**
 * Runs the real entry point as a separate process, for exit statuses and stderr; a non-zero exit is a result, not
 * an error. No configuration file unless `args` names one (RACKSEED_CONFIG points nowhere), so nothing on this
 * machine leaks into the test.
 */
export async function cliProcess(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  try {
    const r = await promisify(execFile)(process.execPath, ['--import', TSX_IMPORT, CLI_MAIN, ...args], {
      env: { ...process.env, RACKSEED_CONFIG: '/nonexistent.yaml', ...opts.env },
      ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as CliResult;
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
