import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { clientContext } from '../../server/cli/context.js';

const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-cli-context-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.unstubAllEnvs());

describe('where the CLI finds the server and its token', () => {
  const config = path.join(dir, 'rackseed.yaml');
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  writeFileSync(config, 'data_dir: ./data\nhttp:\n  port: 18080\n  public_url: http://10.0.0.1:18080\n');
  writeFileSync(path.join(dir, 'data', 'admin-token'), `${'t'.repeat(43)}\n`, { mode: 0o600 });

  it('an empty RACKSEED_URL, RACKSEED_TOKEN or --server is no value: the config file is used (it won before)', () => {
    vi.stubEnv('RACKSEED_URL', '');
    vi.stubEnv('RACKSEED_TOKEN', '');
    const { client } = clientContext({ config, server: '' }, () => undefined);
    expect(client.baseUrl).toBe('http://127.0.0.1:18080');
    expect((client as unknown as { token: string }).token).toBe('t'.repeat(43));
  });

  it('a server that is not an http(s) URL is a usage error naming it (it was "cannot reach ... is rackseed serve running?")', () => {
    for (const server of ['localhost:18931', '127.0.0.1:18931', 'ftp://10.0.0.1', 'http://']) {
      expect(() => clientContext({ config, server, token: 't' }, () => undefined)).toThrow(expect.objectContaining({ name: 'UsageError', message: expect.stringContaining(JSON.stringify(server)) }));
    }
  });

  it('a port fetch refuses to use says why ("bad port"), not only "fetch failed"', async () => {
    const { client } = clientContext({ config, server: 'http://127.0.0.1:10080', token: 't' }, () => undefined);
    await expect(client.get('/status')).rejects.toThrow('cannot reach rackseed at http://127.0.0.1:10080 (bad port)');
  });

  it('flags, then the environment, still come first', () => {
    vi.stubEnv('RACKSEED_URL', 'http://10.9.9.9:8080');
    vi.stubEnv('RACKSEED_TOKEN', 'from-env');
    expect(clientContext({ config }, () => undefined).client.baseUrl).toBe('http://10.9.9.9:8080');
    const flagged = clientContext({ config, server: 'http://10.8.8.8:8080/', token: 'from-flag' }, () => undefined).client;
    expect([flagged.baseUrl, (flagged as unknown as { token: string }).token]).toEqual(['http://10.8.8.8:8080', 'from-flag']);
  });
});
