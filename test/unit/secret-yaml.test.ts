import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { ResolvedNode } from '../../server/model/inventory.js';
import { parseBmcCredentials } from '../../server/power/credentials-file.js';
import { loadPillarDocuments } from '../../server/services/pillar-files.js';
import { parseSecretYaml } from '../../server/util/secret-yaml.js';

/**
 * A typo in a file of secrets (an unquoted value starting with * or !) must not put the secret into an error: errors
 * reach the log, API error bodies, stored runs and the dashboard. The YAML library's messages quote the text.
 */
const SECRET = 'Sup3rSecretPw';
const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-secret-yaml-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function thrown(f: () => unknown): Error & { code?: string } {
  try {
    f();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected an error');
}

describe('files of secrets', () => {
  it.each([
    ['an unquoted *value (an alias to no anchor)', `db_user: admin\ndb_password: *${SECRET}\n`, /secrets\.yaml:2:14: a value starting with \* is read as a reference to an anchor that is not there; quote it/],
    ['an unquoted !value (a tag, silently emptied)', `db_password: !${SECRET}\n`, /secrets\.yaml:1:14: not valid YAML here \(TAG_RESOLVE_FAILED; the text is not shown/],
    ['broken YAML around a secret', `db_password: "${SECRET}\n`, /secrets\.yaml:2:1: not valid YAML here \(/],
  ])('%s: file, line and column, never the value', (_name, text, message) => {
    const e = thrown(() => parseSecretYaml(text, 'secrets.yaml', 'CONFIG_INVALID'));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toMatch(message);
    expect(e.message).not.toContain(SECRET);
  });

  it('a file the YAML library warns about writes nothing to the process\'s stderr (the journal)', () => {
    const warn = vi.spyOn(process, 'emitWarning');
    try {
      thrown(() => parseBmcCredentials(`default: { username: admin, password: !${SECRET} }\n`, 'bmc.yaml'));
      // A key that is a collection: the library warns while converting it (quoting the secret), not while parsing.
      parseSecretYaml(`? [${SECRET}]\n: admin\n`, 'bmc.yaml', 'BMC_CREDENTIALS');
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('pillar and BMC credentials both go through it', () => {
    const bmc = thrown(() => parseBmcCredentials(`default: { username: admin, password: *${SECRET} }\n`, 'bmc.yaml'));
    expect(bmc).toMatchObject({ code: 'BMC_CREDENTIALS' });
    expect(bmc.message).not.toContain(SECRET);
    mkdirSync(path.join(dir, 'groups'), { recursive: true });
    writeFileSync(path.join(dir, 'groups', 'compute.yaml'), `db_password: *${SECRET}\n`, { mode: 0o600 });
    const pillar = thrown(() => loadPillarDocuments(dir, { name: 'cn01', group: 'compute' } as ResolvedNode));
    expect(pillar).toMatchObject({ code: 'CONFIG_INVALID' });
    expect(pillar.message).toContain('compute.yaml:1:14');
    expect(pillar.message).not.toContain(SECRET);
  });

  it('a good file reads as before, anchors and aliases included', () => {
    expect(parseSecretYaml('base: &b { user: admin }\nnode: *b\ntoken: "*not-an-alias"\n', 'x.yaml', 'CONFIG_INVALID')).toEqual({ base: { user: 'admin' }, node: { user: 'admin' }, token: '*not-an-alias' });
  });
});
