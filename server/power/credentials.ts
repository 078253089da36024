import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { RackseedError } from '../model/errors.js';
import { emptyBmcCredentials, parseBmcCredentials, type BmcCredentials } from './credentials-file.js';

export function bmcCredentialsPath(dataDir: string): string {
  return path.join(dataDir, 'secrets', 'bmc.yaml');
}

/**
 * Reads <dataDir>/secrets/bmc.yaml. Read on every power request, so an edit takes effect without a restart. A file
 * that group or others can read is refused rather than used: a leaked BMC password is a powered-off rack.
 * A missing file is not an error here: every node then reports that it has no credentials.
 */
export function loadBmcCredentials(dataDir: string): BmcCredentials {
  const file = bmcCredentialsPath(dataDir);
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyBmcCredentials(file);
    throw e;
  }
  if ((mode & 0o077) !== 0) {
    throw new RackseedError(
      'BMC_CREDENTIALS',
      `${file} is readable by group or others (mode ${(mode & 0o777).toString(8)}); it holds BMC passwords: run chmod 600 ${file}`,
      { file },
    );
  }
  return parseBmcCredentials(readFileSync(file, 'utf8'), file);
}
