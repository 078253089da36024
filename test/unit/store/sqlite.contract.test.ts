import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { openStore } from '../../../server/store/index.js';
import { describeStoreContract } from '../../store/contract.js';

// A real file, not :memory:, so WAL and fsync are exercised the way a server runs them.
describeStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rackseed-store-'));
  const path = join(dir, 'observed.db');
  const store = await openStore({ kind: 'sqlite', path });
  return {
    store,
    // A second connection to the same file, as a second process on this host would open.
    openSibling: () => openStore({ kind: 'sqlite', path }),
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
