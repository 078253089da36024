import { describe, expect, it } from 'vitest';
import type { ImageCatalog } from '../../server/images/catalog.js';
import { createLogger } from '../../server/log.js';
import type { ImageRecord } from '../../server/model/image.js';
import { ServerRegistry } from '../../server/services/server-registry.js';
import type { ObservedStore, ServerRecord } from '../../server/store/types.js';

const image = {
  manifest: {
    version: 1,
    name: 'debian12',
    createdAt: 'now',
    source: { kind: 'import', from: 'test' },
    artefacts: { rootfs: { file: 'rootfs.tar.zst', sha256: 'a'.repeat(64), size: 1 } },
    torrent: { file: 'rootfs.tar.zst.torrent', infoHash: 'b'.repeat(40), pieceLength: 262144 },
  },
  dir: '/nonexistent',
  urlPath: '/files/images/debian12',
} as ImageRecord;

function registry(listServers: () => Promise<ServerRecord[]>): ServerRegistry {
  // Fault injection: only listServers is ever called by torrentSourcesFor.
  const store = { listServers } as unknown as ObservedStore;
  return new ServerRegistry({ store, images: {} as ImageCatalog, name: 'boot-a', publicUrl: 'http://10.0.0.1:8080', tracker: true, log: createLogger('silent') });
}

describe('torrent sources when the store does not answer', () => {
  it('a store that never answers (a partition) still gets the node a torrent naming this server, after a second', async () => {
    const sources = await registry(() => new Promise<never>(() => undefined)).torrentSourcesFor(image);
    expect(sources.tiers).toEqual([['http://10.0.0.1:8080/announce']]);
    expect(sources.webSeeds).toEqual(['http://10.0.0.1:8080/files/images/debian12/rootfs.tar.zst']);
  });

  it('a store that fails at once, the same', async () => {
    const sources = await registry(() => Promise.reject(new Error('connection refused'))).torrentSourcesFor(image);
    expect(sources.tiers).toEqual([['http://10.0.0.1:8080/announce']]);
  });
});

describe('two servers with one name', () => {
  it('the second refuses to start, naming the other; the same server restarting is welcome', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { SqliteStore } = await import('../../server/store/sqlite.js');
    const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-registry-'));
    const store = SqliteStore.open(path.join(dir, 'rackseed.db'));
    await store.migrate();
    const images = { list: () => [], onChange: () => undefined } as unknown as ImageCatalog;
    const make = (publicUrl: string) => new ServerRegistry({ store, images, name: 'pxe', publicUrl, tracker: true, log: createLogger('silent') });
    const first = make('http://10.81.0.1:8080');
    const again = make('http://10.81.0.1:8080');
    try {
      await first.start();
      await expect(make('http://10.82.0.1:8080').start()).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(/^another live server is registered as "pxe" \(http:\/\/10\.81\.0\.1:8080, this one is http:\/\/10\.82\.0\.1:8080\): give each server sharing the store its own server\.name/),
      });
      // Its row is untouched by the refused start.
      expect((await store.listServers()).map((s) => s.publicUrl)).toEqual(['http://10.81.0.1:8080']);
      await again.start();
    } finally {
      await first.stop();
      await again.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
