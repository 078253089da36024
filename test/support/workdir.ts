import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { openStore, type ObservedStore } from '../../server/store/index.js';

/**
 * A fresh temporary directory holding `files` (paths relative to it; parent directories are made) and an SQLite
 * observed-state store in it (migrated on open). The caller closes the store and removes the directory.
 */
export async function workdirWithStore(prefix: string, files: Record<string, string>): Promise<{ dir: string; store: ObservedStore }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  for (const [file, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await writeFile(join(dir, file), text);
  }
  return { dir, store: await openStore({ kind: 'sqlite', path: join(dir, 'observed.db') }) };
}
