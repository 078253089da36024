import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTorrent } from '../../../server/images/torrent.js';

const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-torrent-bytes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('torrent bytes', () => {
  it('carry a fixed creation date and no "created by": the same file gives the same bytes whenever it is made', async () => {
    const file = path.join(dir, 'rootfs.tar.zst');
    writeFileSync(file, Buffer.alloc(100_000, 7));
    const spec = { file, announce: ['http://10.0.0.1:8080/announce'], webSeeds: ['http://10.0.0.1:8080/files/images/x/rootfs.tar.zst'] };
    const t = await makeTorrent(spec, 100_000);
    const text = t.bytes.toString('latin1');
    // Before: create-torrent read the epoch (0) as "now", so every build wrote its own time.
    expect(text).toContain('13:creation datei1e');
    expect(text).not.toContain('created by');
    expect((await makeTorrent(spec, 100_000)).bytes.equals(t.bytes)).toBe(true);
  });
});
