import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

/** The suite's last line (test/summary-reporter.ts), from a real vitest run over the fixture files. */
function lastLine(files: string[]): { status: number | null; line: string } {
  const dir = path.resolve(import.meta.dirname, '../fixtures/summary-reporter');
  const r = spawnSync(process.execPath, [path.resolve('node_modules/vitest/vitest.mjs'), 'run', '--config', path.join(dir, 'vitest.config.ts'), ...files], { encoding: 'utf8', timeout: 60_000 });
  const lines = r.stdout.trim().split('\n');
  return { status: r.status, line: lines[lines.length - 1] ?? '' };
}

it('counts a file whose hook threw and an error outside any test as failed (both read "0 failed" while the run failed)', () => {
  expect(lastLine(['pass.fixture.ts'])).toEqual({ status: 0, line: '1 passed, 0 failed' });
  expect(lastLine(['hook.fixture.ts'])).toEqual({ status: 1, line: '0 passed, 1 failed, 1 skipped' });
  expect(lastLine(['unhandled.fixture.ts'])).toEqual({ status: 1, line: '1 passed, 1 failed' });
});
