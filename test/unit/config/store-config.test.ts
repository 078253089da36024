import { describe, expect, it } from 'vitest';

import { parseConfig, type ConfigEnvironment } from '../../../server/config.js';
import { RackseedError } from '../../../server/model/errors.js';

const FILE = '/etc/rackseed/rackseed.yaml';
const env = (vars: Record<string, string> = {}, hostname = 'boot-a.example.org'): ConfigEnvironment => ({ vars, hostname });

function errorOf(text: string, e: ConfigEnvironment = env()): RackseedError {
  try {
    parseConfig(text, FILE, e);
  } catch (err) {
    if (err instanceof RackseedError) return err;
    throw err;
  }
  throw new Error('expected a config error');
}

describe('config: store', () => {
  it('defaults to SQLite in the data dir, and the server to the name "rackseed"', () => {
    const c = parseConfig('', FILE, env());
    expect(c.store).toEqual({ kind: 'sqlite', path: '/etc/rackseed/data/rackseed.db' });
    expect(c.serverName).toBe('rackseed');
  });

  it('a store: section with only a path is SQLite, the default kind (every key is optional)', () => {
    expect(parseConfig('store:\n  path: my.db\n', FILE, env()).store).toEqual({ kind: 'sqlite', path: '/etc/rackseed/data/my.db' });
    expect(errorOf('store:\n  kind: mysql\n').message).toMatch(/rackseed\.yaml:2 store\.kind: /);
  });

  it('postgres with a URL in the file; pool size defaults to 10', () => {
    const c = parseConfig('store:\n  kind: postgres\n  url: postgres://rs@db.example/rackseed\n', FILE, env());
    expect(c.store).toEqual({ kind: 'postgres', url: 'postgres://rs@db.example/rackseed', poolSize: 10 });
  });

  it('postgres with the URL in RACKSEED_DATABASE_URL when the file names none', () => {
    const c = parseConfig('store:\n  kind: postgres\n  pool_size: 4\n', FILE, env({ RACKSEED_DATABASE_URL: 'postgresql://rs:pw@db/rackseed' }));
    expect(c.store).toEqual({ kind: 'postgres', url: 'postgresql://rs:pw@db/rackseed', poolSize: 4 });
  });

  it('postgres with the URL in a variable named by url_env', () => {
    const c = parseConfig('store:\n  kind: postgres\n  url_env: SITE_DB\n', FILE, env({ SITE_DB: 'postgres://x@y/z', RACKSEED_DATABASE_URL: 'postgres://not@this/one' }));
    expect(c.store).toMatchObject({ kind: 'postgres', url: 'postgres://x@y/z' });
  });

  it('a server sharing PostgreSQL is named after its host unless named in the file', () => {
    const text = 'store:\n  kind: postgres\n  url: postgres://h/db\n';
    expect(parseConfig(text, FILE, env({}, 'Boot-A.example.org')).serverName).toBe('boot-a');
    expect(parseConfig(`server:\n  name: rs2\n${text}`, FILE, env()).serverName).toBe('rs2');
    // A host name that makes no valid server name falls back to the default rather than failing.
    expect(parseConfig(text, FILE, env({}, '_weird_')).serverName).toBe('rackseed');
  });

  it('store.retention: runs 90 days, a node\'s 5 newest of each kind, discovered machines 30 days; 0 days keeps for ever', () => {
    expect(parseConfig('', FILE, env()).storeRetention).toEqual({ runsDays: 90, keepLastRunsPerNode: 5, discoveredDays: 30 });
    const text = 'store:\n  kind: postgres\n  url: postgres://a/b\n  retention:\n    runs_days: 0\n    keep_last_runs_per_node: 2\n';
    expect(parseConfig(text, FILE, env()).storeRetention).toEqual({ runsDays: 0, keepLastRunsPerNode: 2, discoveredDays: 30 });
    expect(parseConfig('store:\n  retention:\n    discovered_days: 0\n', FILE, env()).storeRetention).toMatchObject({ runsDays: 90, discoveredDays: 0 });
  });

  const cases: Array<[string, string, Record<string, string>, RegExp]> = [
    ['neither url nor url_env, default variable unset', 'store:\n  kind: postgres\n', {}, /^\/etc\/rackseed\/rackseed\.yaml:1 store\.url: missing: give store\.url, or store\.url_env .*RACKSEED_DATABASE_URL, is not set/],
    ['url_env names an unset variable', 'store:\n  kind: postgres\n  url_env: SITE_DB\n', {}, /rackseed\.yaml:3 store\.url_env: environment variable SITE_DB is not set/],
    ['url_env holds something else', 'store:\n  kind: postgres\n  url_env: SITE_DB\n', { SITE_DB: 'mysql://x' }, /rackseed\.yaml:3 store\.url_env: environment variable SITE_DB does not hold a postgres:\/\/ or postgresql:\/\/ URL/],
    ['both url and url_env', 'store:\n  kind: postgres\n  url: postgres://a/b\n  url_env: X\n', { X: 'postgres://c/d' }, /rackseed\.yaml:4 store\.url_env: give either url or url_env, not both/],
    ['url that is not postgres', 'store:\n  kind: postgres\n  url: http://db/x\n', {}, /rackseed\.yaml:3 store\.url: expected a postgres:\/\/ or postgresql:\/\/ URL/],
    ['pool_size zero', 'store:\n  kind: postgres\n  url: postgres://a/b\n  pool_size: 0\n', {}, /rackseed\.yaml:4 store\.pool_size: /],
    ['sqlite key on postgres', 'store:\n  kind: postgres\n  url: postgres://a/b\n  path: x.db\n', {}, /rackseed\.yaml:4 store\.path: unknown key "path"/],
    ['bad variable name', 'store:\n  kind: postgres\n  url_env: "1X"\n', {}, /rackseed\.yaml:3 store\.url_env: expected an environment variable name/],
    ['keep_last_runs_per_node 0 (the newest run is always kept)', 'store:\n  retention:\n    keep_last_runs_per_node: 0\n', {}, /rackseed\.yaml:3 store\.retention\.keep_last_runs_per_node: /],
    ['negative runs_days', 'store:\n  kind: postgres\n  url: postgres://a/b\n  retention:\n    runs_days: -1\n', {}, /rackseed\.yaml:5 store\.retention\.runs_days: /],
    ['fractional discovered_days', 'store:\n  retention:\n    discovered_days: 1.5\n', {}, /rackseed\.yaml:3 store\.retention\.discovered_days: /],
    ['misspelt retention key', 'store:\n  retention:\n    run_days: 7\n', {}, /rackseed\.yaml:3 store\.retention\.run_days: unknown key "run_days" \(did you mean "runs_days"\?/],
  ];
  it.each(cases)('%s', (_name, text, vars, expected) => {
    const e = errorOf(text, env(vars));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toMatch(expected);
  });
});
