import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { openStore } from '../../../server/store/index.js';
import { describeStoreContract } from '../../store/contract.js';

// A real file, not :memory:, so WAL and fsync are exercised the way a server runs them.
describeStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rackseed-store-'));
  const store = await openStore({ kind: 'sqlite', path: join(dir, 'observed.db') });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
