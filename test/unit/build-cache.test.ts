import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheKeyHash, ensureCached } from '../../server/util/build-cache.js';

const roots: string[] = [];
function freshRoot(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'rackseed-build-cache-'));
  roots.push(root);
  return root;
}
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

describe('build cache', () => {
  it('builds once, then hits; concurrent callers share one build', async () => {
    const root = freshRoot();
    let builds = 0;
    const build = async (tmp: string) => {
      builds++;
      writeFileSync(path.join(tmp, 'artefact'), 'made');
    };
    const [a, b] = await Promise.all([ensureCached('thing', { v: 1 }, build, root), ensureCached('thing', { v: 1 }, build, root)]);
    expect(a).toBe(b);
    expect(await ensureCached('thing', { v: 1 }, build, root)).toBe(a);
    expect(builds).toBe(1);
    expect(readFileSync(path.join(a, 'artefact'), 'utf8')).toBe('made');
  });

  it('keys by content, not by the order a recipe was written in', async () => {
    expect(cacheKeyHash({ a: 1, b: [2, 3] })).toBe(cacheKeyHash({ b: [2, 3], a: 1 }));
    expect(cacheKeyHash({ a: 1 })).not.toBe(cacheKeyHash({ a: 2 }));
    const root = freshRoot();
    const one = await ensureCached('thing', { a: 1 }, async () => {}, root);
    const two = await ensureCached('thing', { a: 2 }, async () => {}, root);
    expect(one).not.toBe(two);
  });

  it('a failed build leaves neither the artefact nor its temporary directory', async () => {
    const root = freshRoot();
    await expect(ensureCached('broken', { v: 1 }, async (tmp) => {
      writeFileSync(path.join(tmp, 'half'), 'x');
      throw new Error('debootstrap failed');
    }, root)).rejects.toThrow('debootstrap failed');
    expect(readdirSync(root)).toEqual([]);
  });

  it('sweeps the temporary directory of a builder that died, never a live one', async () => {
    const root = freshRoot();
    const dead = path.join(root, `.thing-0123456789abcdef.tmp-999999999-abcd1234`);
    const live = path.join(root, `.thing-0123456789abcdef.tmp-${process.pid}-abcd1234`);
    mkdirSync(dead);
    mkdirSync(live);
    await ensureCached('other', { v: 1 }, async () => {}, root);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });

  it('refuses a name that is not a plain file name', () => {
    expect(() => ensureCached('../escape', {}, async () => {}, freshRoot())).toThrow(/plain file name/);
  });
});
