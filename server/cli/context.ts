import { isIPv6 } from 'node:net';
import { existsSync } from 'node:fs';
import { readAdminToken } from '../auth/admin-token.js';
import { printableText } from '../util/printable.js';
import { loadConfig } from '../config.js';
import { RackseedError } from '../model/errors.js';
import { ApiClient } from './client.js';
import type { Output } from './output.js';
import { UsageError } from './exit.js';

export interface GlobalOptions {
  config: string;
  server?: string;
  token?: string;
  json?: boolean;
}

export interface CliContext {
  client: ApiClient;
  out: Output;
}

/**
 * Where the server is and which token to present: flags first, then RACKSEED_URL / RACKSEED_TOKEN, then the
 * config file (its HTTP port and the token file in its data directory, for commands run on the server itself).
 */
export function clientContext(opts: GlobalOptions, write: (s: string) => void): CliContext {
  // An empty value is no value: `RACKSEED_TOKEN=` from an EnvironmentFile or `${X:-}` must fall back, not win.
  let url = opts.server || process.env.RACKSEED_URL || undefined;
  let token = opts.token || process.env.RACKSEED_TOKEN || undefined;
  if (!url || !token) {
    if (!existsSync(opts.config)) {
      if (!url) throw new RackseedError('CONFIG_NOT_FOUND', `${opts.config} not found: pass --server URL (or set RACKSEED_URL), or --config FILE`);
    } else {
      const config = loadConfig(opts.config);
      const host = config.http.listen === '0.0.0.0' || config.http.listen === '::' ? '127.0.0.1' : config.http.listen;
      url ??= `http://${isIPv6(host) ? `[${host}]` : host}:${config.http.port}`;
      token ??= readAdminToken(config.dataDir);
    }
  }
  if (!/^https?:\/\/[^/]/i.test(url ?? '') || !URL.canParse(url!)) {
    throw new UsageError(`${JSON.stringify(url)} is not the URL of a rackseed server (expected http://HOST:PORT, e.g. http://10.0.0.1:8080)`);
  }
  const json = opts.json === true;
  // Text from nodes (reasons, state output) reaches the terminal here; JSON output escapes controls already.
  return { client: new ApiClient(url!.replace(/\/+$/, ''), token), out: { json, write: json ? write : (s) => write(printableText(s)) } };
}
