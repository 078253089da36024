import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DebootstrapProgress, debootstrapArgs } from '../../../server/images/build-debootstrap.js';
import { findKernel, retargetImage, torrentUrls, writeTorrentAndManifest } from '../../../server/images/build-publish.js';
import { hashFile } from '../../../server/images/hash.js';
import { tarballCompression } from '../../../server/images/import.js';
import { parseManifest } from '../../../server/images/manifest.js';
import type { ImageProgress } from '../../../server/images/progress.js';
import { imageUsers } from '../../../server/images/remove.js';
import { readTorrent } from '../../../server/images/torrent.js';
import { parseInventory, noCsvReader } from '../../../server/inventory/index.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'rackseed-image-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('hashFile', () => {
  it('gives the sha256 and size of a file, streamed', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const file = path.join(tmp, 'blob');
    writeFileSync(file, data);
    let seen = 0;
    const a = await hashFile(file, (n) => (seen += n));
    expect(a).toEqual({ file: 'blob', sha256: createHash('sha256').update(data).digest('hex'), size: data.length });
    expect(seen).toBe(data.length);
  });
  it('an empty file too', async () => {
    writeFileSync(path.join(tmp, 'empty'), '');
    expect(await hashFile(path.join(tmp, 'empty'))).toEqual({ file: 'empty', size: 0, sha256: createHash('sha256').digest('hex') });
  });
});

describe('debootstrap', () => {
  it('never passes a mirror: the release and the directory come last', () => {
    expect(debootstrapArgs({ release: 'bookworm', variant: 'minbase', packages: ['acl', 'attr', 'acl'] }, '/t')).toEqual(['--variant=minbase', '--include=acl,attr', 'bookworm', '/t']);
    expect(debootstrapArgs({ release: 'bookworm', packages: [] }, '/t')).toEqual(['bookworm', '/t']);
  });
  it('progress: four steps per retrieved package; phase headers and index files are not packages', () => {
    const seen: ImageProgress[] = [];
    const p = new DebootstrapProgress((x) => seen.push(x));
    for (const l of [
      'I: Retrieving InRelease ',
      'I: Retrieving libc6 2.36-9',
      'I: Retrieving bash 5.2',
      'I: Validating libc6 2.36-9',
      'I: Unpacking required packages...',
      'I: Unpacking libc6:amd64...',
      'I: Configuring libc6:amd64...',
      'I: Base system installed successfully.',
    ]) p.line(l);
    expect(seen.map((s) => [s.done, s.total, s.detail])).toEqual([
      [1, 4, 'Retrieving libc6'],
      [2, 8, 'Retrieving bash'],
      [3, 8, 'Validating libc6'],
      [4, 8, 'Unpacking libc6:amd64'],
      [5, 8, 'Configuring libc6:amd64'],
    ]);
  });
});

describe('image layout helpers', () => {
  it('finds the newest kernel and its matching initramfs in /boot', () => {
    const boot = path.join(tmp, 'tree', 'boot');
    mkdirSync(boot, { recursive: true });
    for (const f of ['vmlinuz-6.1.0-9-amd64', 'vmlinuz-6.1.0-10-amd64', 'initrd.img-6.1.0-9-amd64', 'initrd.img-6.1.0-10-amd64', 'config-6.1.0-10-amd64']) writeFileSync(path.join(boot, f), f);
    expect(findKernel(path.join(tmp, 'tree'))).toEqual({ kernel: path.join(boot, 'vmlinuz-6.1.0-10-amd64'), initrd: path.join(boot, 'initrd.img-6.1.0-10-amd64') });
    expect(findKernel(path.join(tmp, 'nothing'))).toEqual({});
  });
  it("follows /boot links inside the tree, never to the build host's files", () => {
    const tree = path.join(tmp, 'vendor');
    const boot = path.join(tree, 'boot');
    mkdirSync(path.join(tree, 'etc'), { recursive: true });
    mkdirSync(boot, { recursive: true });
    writeFileSync(path.join(tree, 'etc', 'shadow'), 'the image own shadow');
    // An imported tree whose kernel is an absolute link: on the host it would name the host's /etc/shadow.
    symlinkSync('/etc/shadow', path.join(boot, 'vmlinuz-9.9.9'));
    symlinkSync('/boot/real-initrd', path.join(boot, 'initrd.img-9.9.9'));
    writeFileSync(path.join(boot, 'real-initrd'), 'initrd');
    expect(findKernel(tree)).toEqual({ kernel: path.join(tree, 'etc', 'shadow'), initrd: path.join(boot, 'real-initrd') });
    // A link to nothing in the tree, or to a directory, is no kernel at all.
    const dangling = path.join(tmp, 'dangling');
    mkdirSync(path.join(dangling, 'boot'), { recursive: true });
    symlinkSync('/nonexistent-kernel', path.join(dangling, 'boot', 'vmlinuz-1.0'));
    symlinkSync('/boot', path.join(dangling, 'boot', 'vmlinuz-2.0'));
    expect(findKernel(dangling)).toEqual({});
  });
  it('tarball kinds by name', () => {
    expect(tarballCompression('/x/root.tar')).toEqual([]);
    expect(tarballCompression('/x/root.tar.gz')).toEqual(['--gzip']);
    expect(tarballCompression('/x/root.tgz')).toEqual(['--gzip']);
    expect(tarballCompression('/x/root.tar.zst')).toEqual(['--zstd']);
    expect(tarballCompression('/x/root.zip')).toBeUndefined();
  });
  it('torrent URLs: tracker and web seed at the public URL', () => {
    expect(torrentUrls('http://10.0.0.1:8080/', 'debian12')).toEqual({ announce: ['http://10.0.0.1:8080/announce'], webSeeds: ['http://10.0.0.1:8080/files/images/debian12/rootfs.tar.zst'] });
  });
  it('writes a torrent and a manifest that validates; the info-hash is the torrent\'s', async () => {
    const dir = path.join(tmp, 'img');
    mkdirSync(dir);
    const data = randomBytes(600 * 1024);
    writeFileSync(path.join(dir, 'rootfs.tar.zst'), data);
    const rootfs = await hashFile(path.join(dir, 'rootfs.tar.zst'));
    const m = await writeTorrentAndManifest(dir, { version: 1, name: 'img', createdAt: new Date(0).toISOString(), source: { kind: 'import', from: '/somewhere' }, artefacts: { rootfs } }, 'http://h:1', () => {});
    const onDisk = parseManifest(readFileSync(path.join(dir, 'manifest.json'), 'utf8'), 'manifest.json');
    expect(onDisk).toEqual(m);
    const t = await readTorrent(readFileSync(path.join(dir, 'rootfs.tar.zst.torrent')));
    expect(t).toMatchObject({ infoHash: m.torrent.infoHash, announce: ['http://h:1/announce'], urlList: ['http://h:1/files/images/img/rootfs.tar.zst'], length: data.length, private: true });
    expect(m.torrent.pieceLength).toBe(t.pieceLength);
  });
  it('retargeting keeps the old piece size, so the info-hash survives a change of the default piece size', async () => {
    const dir = path.join(tmp, 'old');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'rootfs.tar.zst'), randomBytes(300 * 1024));
    const rootfs = await hashFile(path.join(dir, 'rootfs.tar.zst'));
    // Made with 16 KiB pieces, which is not what defaultPieceLength picks for 300 KiB.
    const old = await writeTorrentAndManifest(dir, { version: 1, name: 'old', createdAt: new Date(0).toISOString(), source: { kind: 'import', from: '/x' }, artefacts: { rootfs } }, 'http://a:1', () => {}, 16384);
    expect(old.torrent.pieceLength).toBe(16384);
    const moved = await retargetImage(dir, 'new', 'http://b:2');
    expect(moved.torrent).toEqual(old.torrent);
    const t = await readTorrent(readFileSync(path.join(dir, 'rootfs.tar.zst.torrent')));
    expect(t).toMatchObject({ infoHash: old.torrent.infoHash, pieceLength: 16384, announce: ['http://b:2/announce'] });
  });
});

describe('imageUsers', () => {
  it('names the groups that use an image, and nodes that pick it by override', () => {
    const inv = parseInventory(
      [
        'cluster: { name: c }',
        'groups:',
        '  a: { image: debian12 }',
        '  b: { image: rocky9 }',
        'nodes:',
        '  - { name: n1, mac: "52:54:00:00:00:01", group: b, overrides: { image: debian12 } }',
        '  - { name: n2, mac: "52:54:00:00:00:02", group: a }',
      ].join('\n'),
      'inventory.yaml',
      noCsvReader,
    );
    expect(imageUsers(inv, 'debian12')).toEqual({ groups: ['a'], nodes: ['n1'] });
    expect(imageUsers(inv, 'other')).toEqual({ groups: [], nodes: [] });
    expect(imageUsers(undefined, 'debian12')).toEqual({ groups: [], nodes: [] });
  });
});
