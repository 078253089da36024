import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A random secret kept in the data directory with mode 0600 and made on first use. Returns whether it was
 * created now, so a caller can print a token exactly once.
 */
export function ensureSecretFile(dataDir: string, name: string, bytes = 32): { value: string; created: boolean; file: string } {
  const file = path.join(dataDir, name);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    const value = readFileSync(file, 'utf8').trim();
    // Someone loosened the mode by hand: tighten it again rather than keep a world-readable secret.
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    if (value.length >= 32) return { value, created: false, file };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const value = randomBytes(bytes).toString('base64url');
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { value, created: true, file };
}
