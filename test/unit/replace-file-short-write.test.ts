import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * Failure injection: write() writes less than asked (a disk filling up), then fails with ENOSPC. A real full disk
 * needs a mount of its own; the short writes are what Linux does there, so fs.writeSync is made to do the same.
 */
let limit: { perCall: number; failAfter: number } | undefined;
let written = 0;
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const writeSync = (fd: number, data: Uint8Array | string, offset?: number, length?: number): number => {
    if (!limit) return typeof data === 'string' ? fs.writeSync(fd, data) : fs.writeSync(fd, data, offset, length);
    // A string is written as its UTF-8 bytes, short like any other write.
    if (typeof data === 'string') return writeSync(fd, Buffer.from(data, 'utf8'), 0, Buffer.byteLength(data));
    if (written >= limit.failAfter) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const n = Math.min(length ?? data.length, limit.perCall);
    written += n;
    return fs.writeSync(fd, data, offset ?? 0, n);
  };
  return { ...fs, writeSync, default: { ...fs, writeSync } };
});
const { replaceFileDurably } = await import('../../server/util/replace-file.js');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rackseed-replace-'));
  written = 0;
});
afterEach(() => {
  limit = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('replacing a file on a filling disk', () => {
  const text = `nodes:\n${Array.from({ length: 200 }, (_, i) => `  - { name: n${i}, mac: "02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}" }\n`).join('')}`;

  it('short writes: every byte is written before the rename (one call wrote the first 4 KiB and renamed that)', () => {
    const file = path.join(dir, 'inventory.yaml');
    writeFileSync(file, 'old\n');
    limit = { perCall: 4096, failAfter: Infinity };
    replaceFileDurably(file, text);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('a write that fails part way leaves the old file and no temporary file', () => {
    const file = path.join(dir, 'inventory.yaml');
    writeFileSync(file, 'old\n');
    limit = { perCall: 4096, failAfter: 4096 };
    expect(() => replaceFileDurably(file, text)).toThrow(/ENOSPC/);
    expect(readFileSync(file, 'utf8')).toBe('old\n');
    expect(readdirSync(dir)).toEqual(['inventory.yaml']);
  });
});
