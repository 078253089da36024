import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeRecipeFiles } from '../../../server/images/build-chroot.js';
import { pathInTree } from '../../../server/images/tree-path.js';

let work: string;
let root: string;
let host: string;

beforeEach(() => {
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-tree-'));
  root = path.join(work, 'rootfs');
  // Stands in for a directory of the build host that an absolute link in the tree names.
  host = path.join(work, 'host-run');
  mkdirSync(host);
  mkdirSync(path.join(root, 'var'), { recursive: true });
  mkdirSync(path.join(root, 'usr', 'lib'), { recursive: true });
  symlinkSync(host, path.join(root, 'var', 'run')); // absolute, like Debian's /var/run -> /run
  symlinkSync('usr/lib', path.join(root, 'lib')); // relative, like merged /usr
  symlinkSync('../../..', path.join(root, 'usr', 'lib', 'up')); // climbs above the root
  symlinkSync('loop-b', path.join(root, 'loop-a'));
  symlinkSync('loop-a', path.join(root, 'loop-b'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

describe('paths inside an image tree', () => {
  it.each([
    ['/etc/hosts', 'etc/hosts'],
    ['/var/run/x.pid', 'HOST/x.pid'],
    ['/lib/modules/6.1', 'usr/lib/modules/6.1'],
    ['/lib/up/etc/shadow', 'etc/shadow'],
    ['/../../etc/passwd', 'etc/passwd'],
    ['/./etc//ssh/', 'etc/ssh'],
  ])('%s resolves to <root>/%s, never outside the tree', (p, inTree) => {
    expect(pathInTree(root, p)).toBe(path.join(root, inTree.replace('HOST', host.slice(1))));
  });

  it('leaves the last link alone when asked (the file is replaced, not followed), and refuses a link loop', () => {
    expect(pathInTree(root, '/var/run', { followLast: false })).toBe(path.join(root, 'var', 'run'));
    expect(() => pathInTree(root, '/loop-a/x')).toThrow(/too many symbolic links/);
  });

  it("a recipe file under /var/run lands in the image's /run, not the build host's", () => {
    writeRecipeFiles(root, [{ path: '/var/run/rackseed/owned.conf', content: 'x\n' }]);
    expect(existsSync(path.join(host, 'rackseed'))).toBe(false);
    expect(readFileSync(path.join(root, host.slice(1), 'rackseed', 'owned.conf'), 'utf8')).toBe('x\n');
    // A recipe file that is a link in the tree replaces the link instead of writing where it points.
    writeRecipeFiles(root, [{ path: '/var/run', content: 'not a link any more\n' }]);
    expect(lstatSync(path.join(root, 'var', 'run')).isFile()).toBe(true);
    expect(existsSync(path.join(host, 'rackseed'))).toBe(false);
    // A real directory is not replaced by a file.
    expect(() => writeRecipeFiles(root, [{ path: '/usr/lib', content: 'x' }])).toThrow(/\/usr\/lib is a directory in the image: a recipe file cannot replace it/);
  });
});
