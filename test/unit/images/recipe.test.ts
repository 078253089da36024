import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RackseedError } from '../../../server/model/errors.js';
import { bootstrapInputs, loadRecipe, parseRecipe, recipeWantsKernel } from '../../../server/images/recipe.js';

const FILE = 'images/test.yaml';

function errorOf(text: string): RackseedError {
  try {
    parseRecipe(text, FILE);
  } catch (e) {
    if (e instanceof RackseedError) return e;
    throw e;
  }
  throw new Error('expected the recipe to be refused');
}

describe('image recipes', () => {
  it('the shipped debian12 recipe is valid and bootable', () => {
    const r = loadRecipe(path.resolve(import.meta.dirname, '../../../images/debian12.yaml'));
    expect(r.release).toBe('bookworm');
    expect(r.packages).toEqual(expect.arrayContaining(['linux-image-amd64', 'openssh-server', 'systemd-sysv', 'udev']));
    expect(recipeWantsKernel(r)).toBe(true);
    expect(r.files.find((f) => f.path === '/etc/ssh/sshd_config.d/rackseed.conf')?.content).toMatch(/PermitRootLogin prohibit-password/);
  });

  it('fills defaults and leaves out what is not given', () => {
    expect(parseRecipe('release: bookworm\n', FILE)).toEqual({ release: 'bookworm', packages: [], files: [] });
  });

  it.each([
    ['a bad package name, at its list entry', 'release: bookworm\npackages:\n  - vim\n  - "Not A Package"\n', 4, 'packages[1]', /expected a Debian package name/],
    ['an unknown key (a typo)', 'release: bookworm\npackage: [vim]\n', 2, 'package', /unrecognized|unknown/i],
    ['a relative file path', 'release: bookworm\nfiles:\n  - path: /etc/motd\n    content: hi\n  - path: etc/issue\n    content: x\n', 5, 'files[1].path', /absolute path/],
    ['a path that climbs out', 'release: bookworm\nfiles:\n  - path: /etc/../../x\n    content: x\n', 3, 'files[0].path', /without "\.\."/],
    ['a directory path', 'release: bookworm\nfiles:\n  - path: /etc/\n    content: x\n', 3, 'files[0].path', /a trailing "\/"/],
    ['a "." segment', 'release: bookworm\nfiles:\n  - path: /etc/ssh/.\n    content: x\n', 3, 'files[0].path', /absolute path to a file/],
    ['the root itself', 'release: bookworm\nfiles:\n  - path: /.\n    content: x\n', 3, 'files[0].path', /absolute path to a file/],
    ['an empty segment', 'release: bookworm\nfiles:\n  - path: /etc//motd\n    content: x\n', 3, 'files[0].path', /absolute path to a file/],
    ['the policy-rc.d the build uses', 'release: bookworm\nfiles:\n  - path: /usr/sbin/policy-rc.d\n    content: x\n', 3, 'files[0].path', /the build uses \/usr\/sbin\/policy-rc\.d/],
    ['a bad mode', 'release: bookworm\nfiles:\n  - path: /etc/motd\n    content: x\n    mode: rwx\n', 5, 'files[0].mode', /./],
    ['an unknown variant', 'release: bookworm\nvariant: tiny\n', 2, 'variant', /minbase/],
    ['a missing release', 'packages: [vim]\n', 1, 'release', /missing|expected string/],
  ])('refuses %s with file:line and key', (_what, text, line, key, why) => {
    const e = errorOf(text);
    expect(e.code).toBe('IMAGE_RECIPE_INVALID');
    expect(e.message.startsWith(`${FILE}:${line} ${key}: `)).toBe(true);
    expect(e.message).toMatch(why);
    expect(e.details).toMatchObject({ file: FILE, line, path: key });
  });

  it('reports a YAML syntax error with its line', () => {
    const e = errorOf('release: bookworm\npackages: [vim\nhook: x\n');
    expect(e.message).toMatch(/^images\/test\.yaml:\d+: YAML syntax error/);
  });

  it('a missing file is a one-line error naming it', () => {
    expect(() => loadRecipe('/nonexistent/r.yaml')).toThrow(/^\/nonexistent\/r\.yaml: cannot read the recipe/);
  });

  it('debootstrap inputs ignore package order and duplicates, and files and hook', () => {
    const a = parseRecipe('release: bookworm\nvariant: minbase\npackages: [b, a, a]\nhook: echo 1\n', FILE);
    const b = parseRecipe('release: bookworm\nvariant: minbase\npackages: [a, b]\nfiles: [{path: /x, content: y}]\n', FILE);
    expect(bootstrapInputs(a)).toEqual(bootstrapInputs(b));
    expect(bootstrapInputs(a)).toEqual({ release: 'bookworm', variant: 'minbase', packages: ['a', 'b'] });
  });
});

describe('the recipe an image manifest keeps', () => {
  it('keeps everything but the hook, which it records by sha256 (the manifest is public)', async () => {
    const { publishedRecipe } = await import('../../../server/images/manifest.js');
    const { manifestSchema } = await import('../../../server/images/manifest.js');
    const recipe = parseRecipe('release: bookworm\npackages: [curl]\nhook: |\n  echo "machine repo login u password S3cret" > /etc/apt/auth.conf.d/x\n', FILE);
    const published = publishedRecipe(recipe);
    expect(published).toEqual({ release: 'bookworm', packages: ['curl'], files: [], hookSha256: createHash('sha256').update(recipe.hook!).digest('hex') });
    expect(JSON.stringify(published)).not.toContain('S3cret');
    expect(publishedRecipe({ release: 'bookworm', packages: [], files: [] })).toEqual({ release: 'bookworm', packages: [], files: [] });
    // Manifests written before this still hold the hook's text, and still parse.
    const old = { version: 1, name: 'x', createdAt: 'now', source: { kind: 'debootstrap', recipe: { release: 'bookworm', packages: [], files: [], hook: 'echo 1' } }, artefacts: { rootfs: { file: 'rootfs.tar.zst', sha256: 'a'.repeat(64), size: 1 } }, torrent: { file: 'rootfs.tar.zst.torrent', infoHash: 'b'.repeat(40), pieceLength: 262144 } };
    expect(manifestSchema.safeParse(old).success).toBe(true);
  });

  it('a manifest from before that, still holding the hook\'s text, is rewritten with its sha256 when the catalog reads it (it was served on the boot network as it was)', async () => {
    const { ImageCatalog, imagesDir } = await import('../../../server/images/catalog.js');
    const { createLogger } = await import('../../../server/log.js');
    const dataDir = mkdtempSync(path.join(tmpdir(), 'rackseed-old-manifest-'));
    try {
      const hook = 'echo "machine mirror.corp login ci password S3cr3t-M1rror" > /etc/apt/auth.conf.d/m.conf';
      const dir = path.join(imagesDir(dataDir), 'old1');
      mkdirSync(dir, { recursive: true });
      const old = { version: 1, name: 'old1', createdAt: '2026-01-01T00:00:00.000Z', source: { kind: 'debootstrap', recipe: { release: 'bookworm', packages: ['curl'], files: [], hook } }, artefacts: { rootfs: { file: 'rootfs.tar.zst', sha256: 'a'.repeat(64), size: 1 } }, torrent: { file: 'rootfs.tar.zst.torrent', infoHash: 'b'.repeat(40), pieceLength: 262144 } };
      writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(old));
      const catalog = new ImageCatalog(dataDir, createLogger('silent'));
      const onDisk = readFileSync(path.join(dir, 'manifest.json'), 'utf8');
      expect(onDisk).not.toContain('S3cr3t');
      const expected = { ...old, source: { kind: 'debootstrap', recipe: { release: 'bookworm', packages: ['curl'], files: [], hookSha256: createHash('sha256').update(hook).digest('hex') } } };
      expect(JSON.parse(onDisk)).toEqual(expected);
      expect(catalog.get('old1')?.manifest).toEqual(expected);
      // Read again: nothing left to rewrite, the file stays as it is.
      catalog.rescan();
      expect(readFileSync(path.join(dir, 'manifest.json'), 'utf8')).toBe(onDisk);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the /files route and the catalog', () => {
  it('serves an image\'s files only while the catalog lists it: an old manifest whose hook text could not be removed is not served', async () => {
    const { startTestServer } = await import('../../support/server.js');
    const { imagesDir } = await import('../../../server/images/catalog.js');
    const server = await startTestServer();
    try {
      const dir = path.join(imagesDir(server.config.dataDir), 'old1');
      mkdirSync(dir, { recursive: true });
      const old = { version: 1, name: 'old1', createdAt: '2026-01-01T00:00:00.000Z', source: { kind: 'debootstrap', recipe: { release: 'bookworm', packages: [], files: [], hook: 'echo password S3cr3t-M1rror' } }, artefacts: { rootfs: { file: 'rootfs.tar.zst', sha256: 'a'.repeat(64), size: 1 } }, torrent: { file: 'rootfs.tar.zst.torrent', infoHash: 'b'.repeat(40), pieceLength: 262144 } };
      writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(old));
      // The rewrite cannot happen (its temporary file's name is taken by a directory: as a read-only disk would).
      mkdirSync(path.join(dir, `.manifest.json.${process.pid}.tmp`));
      server.reload();
      expect(server.images.get('old1')).toBeUndefined();
      const res = await fetch(`${server.httpUrl}/files/images/old1/manifest.json`);
      // Before: 200, with the hook's text in the body.
      expect(res.status).toBe(404);
      expect(await res.text()).not.toContain('S3cr3t');
      // Once it can be rewritten, it is listed and served without the text.
      rmSync(path.join(dir, `.manifest.json.${process.pid}.tmp`), { recursive: true });
      server.reload();
      expect(server.images.get('old1')).toBeDefined();
      const served = await fetch(`${server.httpUrl}/files/images/old1/manifest.json`);
      expect(served.status).toBe(200);
      expect(await served.text()).not.toContain('S3cr3t');
    } finally {
      await server.stop();
    }
  });
});
