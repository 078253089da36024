import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The network harness's own promises (server/lab/netns.ts): it leaves nothing behind when its process is told to
 * stop, and it never signals a process it did not start. Each case runs in a process of its own.
 */
const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/netns-harness');
const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-netns-harness-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('network harness', () => {
  it('a vitest worker that gets SIGTERM removes its namespaces and stops there (it went on creating namespaces nothing removed)', () => {
    const report = path.join(dir, 'sigterm.txt');
    const r = spawnSync(process.execPath, [path.resolve('node_modules/vitest/vitest.mjs'), 'run', '--config', path.join(FIXTURES, 'vitest.config.ts')], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, NETNS_REPORT: report },
    });
    const lines = readFileSync(report, 'utf8').trim().split('\n');
    const prefix = lines[0]!.replace(/^prefix /, '');
    expect(prefix).toMatch(/^rs/);
    expect(lines.slice(1)).toEqual([]);
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(prefix));
    expect(left).toEqual([]);
    expect(r.status).not.toBe(0);
  });

  it('never signals an adopted PID once its process is gone and the number belongs to another one', () => {
    // PID 1 of a PID namespace of its own, where the fixture can hand a number to the next process.
    const r = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '--import', 'tsx', path.join(FIXTURES, 'pid-reuse.mts')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout.trim())).toEqual({ reused: true, decoyAlive: true });
  });
});
