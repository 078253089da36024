import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createLogger, type Logger } from '../../server/log.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { NodeIdentity } from '../../server/services/node-identity.js';
import type { StateServiceDeps } from '../../server/services/state-service.js';
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

/**
 * What a StateService needs over a work directory laid out as workdirWithStore makes it (inventory.yaml, sls/,
 * pillar/, data/), reaching nodes through `transportFor` (a FakeTransport in the unit tests).
 */
export function stateServiceDeps(dir: string, store: ObservedStore, transportFor: StateServiceDeps['transportFor'], log: Logger = createLogger('silent')): StateServiceDeps {
  return {
    inventory: new InventoryService(join(dir, 'inventory.yaml'), log),
    store,
    identity: new NodeIdentity(join(dir, 'data')),
    settings: { roots: [join(dir, 'sls')], pillarDir: join(dir, 'pillar'), concurrency: 1, commandTimeoutMs: 5_000, connectTimeoutMs: 1_000, sshPort: 22 },
    log,
    ...(transportFor ? { transportFor } : {}),
  };
}
