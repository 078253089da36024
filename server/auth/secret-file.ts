import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RackseedError } from '../model/errors.js';

/** The shortest token or key accepted from a secret file: what 24 random bytes give in base64. */
export const MIN_SECRET_LENGTH = 32;

/**
 * A random secret kept in the data directory with mode 0600 and made on first use (or when the file is empty, as
 * a crash during the first write leaves it). Returns whether it was created now, so a caller can print a token
 * exactly once. A value the operator wrote that is too short is refused, never silently replaced: replacing it
 * would lock out every client that holds it, with no word why.
 */
export function ensureSecretFile(dataDir: string, name: string, bytes = 32): { value: string; created: boolean; file: string } {
  const file = path.join(dataDir, name);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    const value = readFileSync(file, 'utf8').trim();
    // Someone loosened the mode by hand: tighten it again rather than keep a world-readable secret.
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    if (value.length >= MIN_SECRET_LENGTH) return { value, created: false, file };
    if (value.length > 0) {
      throw new RackseedError(
        'SECRET_INVALID',
        `${file} holds ${value.length} characters; a token or key must have at least ${MIN_SECRET_LENGTH} ` +
          `(e.g. openssl rand -base64 32 > ${file}), or delete the file to have a new one made`,
        { file },
      );
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const value = randomBytes(bytes).toString('base64url');
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { value, created: true, file };
}

/** The secret in `file` if it is long enough to accept, for files re-read at run time (a rotated token). */
export function readSecretFile(file: string): string | undefined {
  try {
    const value = readFileSync(file, 'utf8').trim();
    return value.length >= MIN_SECRET_LENGTH ? value : undefined;
  } catch {
    return undefined;
  }
}
