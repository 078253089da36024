import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../server/config.js';
import { createLogger } from '../../server/log.js';
import { startServer, type RunningServer } from '../../server/main.js';

export interface TestServer extends RunningServer {
  dir: string;
  inventoryFile: string;
  stop(): Promise<void>;
}

/**
 * A real rackseed on loopback with an ephemeral HTTP port, its own data directory and a copy of an inventory
 * fixture (so edits do not touch the repository). TFTP is off unless asked for: it needs a port of its own.
 */
export async function startTestServer(opts: { inventoryFixture?: string; extraConfig?: string; httpConfig?: string } = {}): Promise<TestServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-test-'));
  const inventoryFile = path.join(dir, 'inventory.yaml');
  if (opts.inventoryFixture) copyFileSync(path.resolve(import.meta.dirname, '..', 'fixtures', opts.inventoryFixture), inventoryFile);
  const configText = [
    `http:\n  listen: 127.0.0.1\n  port: 0\n  public_url: http://10.0.0.1:8080${opts.httpConfig ? `\n  ${opts.httpConfig}` : ''}`,
    'tftp:\n  enabled: false',
    'log:\n  level: silent',
    opts.extraConfig ?? '',
  ].join('\n');
  const configFile = path.join(dir, 'rackseed.yaml');
  writeFileSync(configFile, configText);
  const config = parseConfig(configText, configFile);
  const server = await startServer(config, { logger: createLogger('silent') });
  return {
    ...server,
    dir,
    inventoryFile,
    async stop() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
