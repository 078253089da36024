import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ensureSecretFile } from './secret-file.js';

export const ADMIN_TOKEN_FILE = 'admin-token';

/**
 * The admin API's bearer token: made at first start, kept in the data directory with mode 0600, and never
 * written anywhere else. Returns whether it was created now, so the caller can print it exactly once.
 */
export function ensureAdminToken(dataDir: string): { token: string; created: boolean; file: string } {
  const { value, created, file } = ensureSecretFile(dataDir, ADMIN_TOKEN_FILE);
  return { token: value, created, file };
}

export function readAdminToken(dataDir: string): string | undefined {
  try {
    return readFileSync(path.join(dataDir, ADMIN_TOKEN_FILE), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Constant-time comparison that does not leak the token's length either. */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
