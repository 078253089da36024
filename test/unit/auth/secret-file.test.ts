import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureSecretFile, MIN_SECRET_LENGTH, readSecretFile } from '../../../server/auth/secret-file.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rackseed-secret-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('secret files in the data directory', () => {
  it('makes a random secret with mode 0600 on first use and keeps it afterwards', () => {
    const first = ensureSecretFile(dir, 'admin-token');
    expect(first.created).toBe(true);
    expect(first.value.length).toBeGreaterThanOrEqual(MIN_SECRET_LENGTH);
    expect(statSync(first.file).mode & 0o777).toBe(0o600);
    expect(ensureSecretFile(dir, 'admin-token')).toEqual({ value: first.value, created: false, file: first.file });
  });

  it("keeps a long enough secret the operator wrote, tightening a loose mode", () => {
    const file = path.join(dir, 'metrics-token');
    const mine = 'o'.repeat(MIN_SECRET_LENGTH);
    writeFileSync(file, `${mine}\n`, { mode: 0o644 });
    expect(ensureSecretFile(dir, 'metrics-token')).toEqual({ value: mine, created: false, file });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('refuses a short secret, naming the file, and leaves it as it was', () => {
    const file = path.join(dir, 'admin-token');
    writeFileSync(file, 'changeme\n', { mode: 0o600 });
    expect(() => ensureSecretFile(dir, 'admin-token')).toThrow(
      expect.objectContaining({ code: 'SECRET_INVALID', message: expect.stringContaining(`${file} holds 8 characters; a token or key must have at least 32`) }),
    );
    expect(readFileSync(file, 'utf8')).toBe('changeme\n');
  });

  it('makes a new secret for an empty file (a first write cut short)', () => {
    writeFileSync(path.join(dir, 'node-token-key'), '');
    const made = ensureSecretFile(dir, 'node-token-key');
    expect(made.created).toBe(true);
    expect(readFileSync(made.file, 'utf8').trim()).toBe(made.value);
  });

  it('reads a rotated secret only when it is long enough', () => {
    const file = path.join(dir, 'metrics-token');
    expect(readSecretFile(file)).toBeUndefined();
    writeFileSync(file, 'short\n');
    expect(readSecretFile(file)).toBeUndefined();
    writeFileSync(file, `${'r'.repeat(MIN_SECRET_LENGTH)}\n`);
    expect(readSecretFile(file)).toBe('r'.repeat(MIN_SECRET_LENGTH));
  });
});
