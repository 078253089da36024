import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRackseedError } from '../../../server/model/errors.js';
import { makeTorrent, readTorrent } from '../../../server/images/torrent.js';
import { torrentSources, withSources, type TorrentServer } from '../../../server/images/torrent-sources.js';

const IMAGE = { sha256: 'a'.repeat(64), infoHash: 'b'.repeat(40) };
const FILE = '/files/images/debian12/rootfs.tar.zst';

describe('torrentSources', () => {
  const self = { name: 'boot-a', publicUrl: 'http://10.0.0.1:8080', tracker: true, image: IMAGE };

  it('lists this server first, then the others holding the identical image as one fallback tier', () => {
    const others: TorrentServer[] = [
      { name: 'boot-c', publicUrl: 'http://10.2.0.1:8080', tracker: true, image: IMAGE },
      self,
      { name: 'boot-b', publicUrl: 'http://10.1.0.1:8080', tracker: true, image: IMAGE },
    ];
    expect(torrentSources(self, others, FILE)).toEqual({
      tiers: [['http://10.0.0.1:8080/announce'], ['http://10.1.0.1:8080/announce', 'http://10.2.0.1:8080/announce']],
      webSeeds: ['http://10.0.0.1:8080' + FILE, 'http://10.1.0.1:8080' + FILE, 'http://10.2.0.1:8080' + FILE],
    });
  });

  it('leaves out servers without the image, or with different bytes under the same name', () => {
    const others: TorrentServer[] = [
      { name: 'no-image', publicUrl: 'http://n', tracker: true },
      { name: 'other-build', publicUrl: 'http://o', tracker: true, image: { ...IMAGE, sha256: 'c'.repeat(64) } },
      { name: 'other-torrent', publicUrl: 'http://t', tracker: true, image: { ...IMAGE, infoHash: 'd'.repeat(40) } },
    ];
    expect(torrentSources(self, others, FILE)).toEqual({ tiers: [['http://10.0.0.1:8080/announce']], webSeeds: ['http://10.0.0.1:8080' + FILE] });
  });

  it('lists a server without a tracker as a web seed only', () => {
    const others: TorrentServer[] = [{ name: 'boot-b', publicUrl: 'http://b', tracker: false, image: IMAGE }];
    expect(torrentSources({ ...self, tracker: false }, others, FILE)).toEqual({ tiers: [], webSeeds: ['http://10.0.0.1:8080' + FILE, 'http://b' + FILE] });
  });
});

describe('withSources', () => {
  let work: string;
  let original: Buffer;
  let infoHash: string;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'rackseed-tsrc-'));
    const file = path.join(work, 'rootfs.tar.zst');
    writeFileSync(file, randomBytes(300_000));
    const t = await makeTorrent({ file, announce: ['http://old/announce'], webSeeds: ['http://old/files/x'], pieceLength: 16384 }, 300_000);
    original = Buffer.from(t.bytes);
    infoHash = t.infoHash;
  });

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('replaces trackers and web seeds and keeps the info-hash', async () => {
    const sources = { tiers: [['http://a/announce'], ['http://b/announce', 'http://c/announce']], webSeeds: ['http://a/f', 'http://b/f'] };
    const out = Buffer.from(withSources(original, sources));
    const parsed = await readTorrent(out);
    expect(parsed.infoHash).toBe(infoHash);
    expect(parsed.private).toBe(true);
    expect(parsed.urlList).toEqual(['http://a/f', 'http://b/f']);
    const text = out.toString('latin1');
    expect(text).toContain('8:announce17:http://a/announce');
    expect(text).toContain('13:announce-listll17:http://a/announceel17:http://b/announce17:http://c/announceee');
    expect(text).toContain('8:url-listl10:http://a/f10:http://b/fe');
    // The info-hash is the SHA-1 of the info dictionary's bytes: equal hashes mean those bytes were left alone.
  });

  it('is a no-op when given the sources the torrent already has', () => {
    const same = withSources(original, { tiers: [['http://old/announce']], webSeeds: ['http://old/files/x'] });
    expect(Buffer.from(same).equals(Buffer.from(original))).toBe(true);
  });

  it('keeps the trackers when there are no tiers to give', async () => {
    const parsed = await readTorrent(Buffer.from(withSources(original, { tiers: [], webSeeds: ['http://z/f'] })));
    expect(parsed.announce).toEqual(['http://old/announce']);
    expect(parsed.urlList).toEqual(['http://z/f']);
  });

  it.each([
    ['not a dictionary', () => Buffer.from('li1ee')],
    ['truncated', () => original.subarray(0, original.length - 10)],
    ['trailing bytes', () => Buffer.concat([original, Buffer.from('x')])],
    ['bad string length', () => Buffer.from('d3xfoo3:bare')],
  ])('refuses a malformed torrent (%s)', (_why, bytes) => {
    let err: unknown;
    try {
      withSources(bytes(), { tiers: [['http://a/announce']], webSeeds: [] });
    } catch (e) {
      err = e;
    }
    expect(isRackseedError(err) && err.code).toBe('INTERNAL');
  });
});
