import { describe, expect, it } from 'vitest';
import { decodeTarName } from '../../../server/backup/tar.js';
import { archiveProblems, excludedFromBackup, isSecretPath, parseManifest, restoredMode, type ArchiveEntry } from '../../../server/backup/layout.js';

const manifest = { name: '.rackseed-backup/manifest.json', type: '-' };
const meta = { name: '.rackseed-backup/', type: 'd' };

describe('archiveProblems', () => {
  const cases: Array<[string, ArchiveEntry[], string[]]> = [
    ['a backup as rackseed writes it', [meta, manifest, { name: '.rackseed-backup/store.db', type: '-' }, { name: 'ssh/', type: 'd' }, { name: 'ssh/id_ed25519', type: '-' }, { name: 'admin-token', type: '-' }], []],
    ['"../" at the start', [manifest, { name: '../escape', type: '-' }], ['"../escape": a path with ".." in it']],
    ['".." further in', [manifest, { name: 'nodes/../../etc/passwd', type: '-' }], ['"nodes/../../etc/passwd": a path with ".." in it']],
    ['".." as a directory', [manifest, { name: '../', type: 'd' }], ['"../": a path with ".." in it']],
    ['an absolute path', [manifest, { name: '/etc/cron.d/x', type: '-' }], ['"/etc/cron.d/x": an absolute path']],
    ['a symbolic link', [manifest, { name: 'ssh', type: 'l' }], ['"ssh": a symbolic link (a backup holds only files and directories)']],
    ['a hard link', [manifest, { name: 'admin-token', type: 'h' }], ['"admin-token": a hard link (a backup holds only files and directories)']],
    ['a device', [manifest, { name: 'dev', type: 'b' }], ['"dev": a block device (a backup holds only files and directories)']],
    ['"./" and empty components', [manifest, { name: './admin-token', type: '-' }, { name: 'ssh//id', type: '-' }], ['"./admin-token": not a plain relative path', '"ssh//id": not a plain relative path']],
    ['an escaped name (control characters)', [manifest, { name: 'a\\nb', type: '-' }], ['"a\\\\nb": a name with control characters or backslashes']],
    ['something else in the reserved directory', [manifest, { name: '.rackseed-backup/run.sh', type: '-' }], ['".rackseed-backup/run.sh": unexpected in .rackseed-backup/']],
    ['the same name twice', [manifest, { name: 'admin-token', type: '-' }, { name: 'admin-token', type: '-' }], ['"admin-token": listed twice']],
    ['no manifest', [{ name: 'admin-token', type: '-' }], ['no .rackseed-backup/manifest.json: not a rackseed backup']],
  ];
  it.each(cases)('%s', (_what, entries, problems) => {
    expect(archiveProblems(entries)).toEqual(problems);
  });
});

describe('excludedFromBackup', () => {
  const cases: Array<[string, boolean, boolean]> = [
    // path, withImages, excluded
    ['admin-token', false, false],
    ['ssh/known_hosts', false, false],
    ['nodes/n1/ssh_host_ed25519_key', false, false],
    ['files/site.txt', false, false],
    ['files/images', false, true],
    ['files/images/debian12/rootfs.tar.zst', false, true],
    ['files/installer/vmlinuz', false, true],
    ['files/images/debian12/rootfs.tar.zst', true, false],
    ['files/installer', true, false],
    ['.image-work', true, true],
    ['.image-work/1.2.x-abc/rootfs', true, true],
    ['server.pid', false, true],
    ['.rackseed-backup', false, true],
    ['ssh/known_hosts.tmp-4242', false, true],
    ['nodes/n1/ssh_host_ed25519_key.tmp-4242.pub', false, true],
    ['.inventory.yaml.4242.tmp', false, true],
  ];
  it.each(cases)('%s (with images: %s) excluded: %s', (rel, withImages, excluded) => {
    expect(excludedFromBackup(rel, withImages) !== undefined).toBe(excluded);
  });
});

describe('restoredMode', () => {
  const cases: Array<[string, number, boolean, number]> = [
    ['admin-token', 0o644, false, 0o600],
    ['metrics-token', 0o666, false, 0o600],
    ['node-token-key', 0o600, false, 0o600],
    ['callback-token-key', 0o640, false, 0o600],
    ['secrets', 0o755, true, 0o700],
    ['secrets/munge.key', 0o644, false, 0o600],
    ['secrets/bmc.yaml', 0o644, false, 0o600],
    ['pillar/nodes/n1.yaml', 0o644, false, 0o600],
    ['ssh', 0o755, true, 0o700],
    ['ssh/id_ed25519', 0o644, false, 0o600],
    ['ssh/id_ed25519.pub', 0o644, false, 0o644],
    ['ssh/known_hosts', 0o644, false, 0o644],
    ['nodes/n1/ssh_host_ed25519_key', 0o644, false, 0o600],
    ['nodes/n1/known_host', 0o644, false, 0o644],
    ['files/site.txt', 0o4755, false, 0o755],
  ];
  it.each(cases)('%s (archived %o) gets %o', (rel, archived, isDirectory, expected) => {
    expect(restoredMode(rel, archived, isDirectory)).toBe(expected);
    expect(isSecretPath(rel)).toBe(expected === 0o600 || expected === 0o700);
  });
});

describe('parseManifest', () => {
  const good = {
    format: 'rackseed-backup',
    formatVersion: 1,
    rackseedVersion: '0.1.0',
    createdAt: '2026-11-24T00:00:00.000Z',
    dataDir: '/var/lib/rackseed',
    withImages: false,
    store: { kind: 'postgres', included: false, reason: 'pg_dump' },
    files: 3,
    bytes: 100,
    contents: ['admin-token'],
    leftOut: [],
  };
  it('reads what create writes', () => {
    expect(parseManifest(JSON.stringify(good))).toEqual(good);
  });
  it.each([
    ['not JSON', '{', /^the manifest is not JSON/],
    ['another format', JSON.stringify({ ...good, format: 'tarball' }), /^the manifest's format: /],
    ['a newer format version', JSON.stringify({ ...good, formatVersion: 2 }), /^the manifest's formatVersion: /],
  ])('%s is refused', (_what, text, error) => {
    const r = parseManifest(text);
    expect('error' in r && r.error).toMatch(error);
  });
});

describe('decodeTarName (GNU tar --quoting-style=escape under the C locale)', () => {
  it.each([
    ['pillar/nodes/n1.yaml', 'pillar/nodes/n1.yaml'],
    ['pillar/nodes/caf\\303\\251.yaml', 'pillar/nodes/café.yaml'],
    ['a\\\\b', 'a\\b'],
    ['a\\nb', 'a\nb'],
    ['tab\\there', 'tab\there'],
    // Not UTF-8, or an escape tar does not write: kept as printed, with its backslash, which archiveProblems refuses.
    ['bad\\377', 'bad\\377'],
    ['odd\\q', 'odd\\q'],
  ])('%s -> %s', (printed, name) => {
    expect(decodeTarName(printed)).toBe(name);
  });

  it('a decoded name with a control character or backslash is refused; a UTF-8 one is not', () => {
    const manifest = { name: '.rackseed-backup/manifest.json', type: '-' };
    expect(archiveProblems([manifest, { name: 'pillar/café.yaml', type: '-' }])).toEqual([]);
    expect(archiveProblems([manifest, { name: 'a\nb', type: '-' }])).toEqual(['"a\\nb": a name with control characters or backslashes']);
    expect(archiveProblems([manifest, { name: 'bad\\377', type: '-' }])).toEqual(['"bad\\\\377": a name with control characters or backslashes']);
  });
});
