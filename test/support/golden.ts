import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';

/**
 * Compares text with a golden file under test/fixtures. UPDATE_GOLDEN=1 rewrites the file instead; review the
 * diff before committing it.
 */
export function expectGolden(relPath: string, actual: string): void {
  const file = path.resolve(import.meta.dirname, '..', 'fixtures', relPath);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  if (!existsSync(file)) throw new Error(`golden file ${file} is missing: run with UPDATE_GOLDEN=1 and review it`);
  expect(actual).toBe(readFileSync(file, 'utf8'));
}
