import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, chmodSync, statSync } from 'node:fs';
import path from 'node:path';

export const ADMIN_TOKEN_FILE = 'admin-token';

/**
 * The admin API's bearer token: made at first start, kept in the data directory with mode 0600, and never
 * written anywhere else. Returns whether it was created now, so the caller can print it exactly once.
 */
export function ensureAdminToken(dataDir: string): { token: string; created: boolean; file: string } {
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    const token = readFileSync(file, 'utf8').trim();
    // Someone loosened the mode by hand: tighten it again rather than serve a world-readable secret.
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    if (token.length >= 32) return { token, created: false, file };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const token = randomBytes(32).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, created: true, file };
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
