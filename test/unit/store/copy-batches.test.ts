import { describe, expect, it } from 'vitest';
import { jsonBatches } from '../../../server/store/copy.js';

/** The SQLite -> PostgreSQL copy sends each batch as one jsonb parameter, which PostgreSQL caps at 256 MiB. */
describe('copy batches', () => {
  const rows = (...sizes: number[]) => sizes.map((n, i) => JSON.stringify('x'.repeat(n)).slice(0, n + 2) || String(i));
  it.each([
    ['by rows', rows(1, 1, 1, 1, 1), 2, 1000, [2, 2, 1]],
    ['by size: a batch ends before the row that would overflow it', rows(10, 10, 10, 10), 100, 30, [2, 2]],
    ['a row larger than a batch goes alone', rows(5, 100, 5), 100, 30, [1, 1, 1]],
    ['nothing', [], 10, 10, []],
  ])('%s', (_name, input, maxRows, maxChars, sizes) => {
    const batches = [...jsonBatches(input, maxRows, maxChars)];
    expect(batches.map((b) => (JSON.parse(b) as unknown[]).length)).toEqual(sizes);
    expect(batches.flatMap((b) => JSON.parse(b) as unknown[])).toEqual(input.map((r) => JSON.parse(r) as unknown));
    for (const b of batches) if ((JSON.parse(b) as unknown[]).length > 1) expect(b.length).toBeLessThanOrEqual(maxChars + 2);
  });
});
