import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * A content-addressed cache for expensive test artefacts (initramfs images, later debootstrap trees). It lives
 * outside the repository so `git clean` and fresh checkouts do not pay for a rebuild, and the directory name
 * carries a hash of the recipe so a changed recipe simply gets a new directory instead of a stale hit.
 *
 * A directory that exists under its final name is complete: builds happen in a temporary sibling that is renamed
 * into place in one step, so a build killed half way leaves only a temporary directory, never a half artefact.
 */

/** `${XDG_CACHE_HOME:-$HOME/.cache}/rackseed-test`. */
export function cacheRoot(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  // The XDG spec says a relative value is invalid and must be ignored.
  const base = xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.cache');
  return join(base, 'rackseed-test');
}

/** JSON with object keys sorted, so that the hash does not depend on the order a recipe was written in. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

/** The first 16 hex digits of sha256 over the recipe's (key-sorted) JSON. */
export function recipeHash(recipe: unknown): string {
  return createHash('sha256').update(stableJson(recipe) ?? 'undefined').digest('hex').slice(0, 16);
}

/** Where the artefact for `recipe` lives (`<root>/<name>-<hash>`); it may not exist yet. */
export function cacheDir(name: string, recipe: unknown): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`cache name ${JSON.stringify(name)} is not a plain file name`);
  return join(cacheRoot(), `${name}-${recipeHash(recipe)}`);
}

const TMP_MARK = '.tmp-';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM means it exists but belongs to someone else: still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporary build directories whose builder process is gone (a killed run), never a live builder's. */
function sweepAbandoned(root: string): void {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return;
  }
  for (const entry of entries) {
    const m = /\.tmp-(\d+)-[0-9a-f]+$/.exec(entry);
    if (!m || !entry.startsWith('.')) continue;
    if (!pidAlive(Number(m[1]))) rmSync(join(root, entry), { recursive: true, force: true });
  }
}

/** Builders in flight in this process, so concurrent callers share one build instead of racing. */
const inFlight = new Map<string, Promise<string>>();

/**
 * Returns the cache directory for `recipe`, running `build(tmpDir)` first when it is missing. `build` fills
 * `tmpDir` (already created, empty); on success the directory is renamed into place, on failure it is removed.
 * If another process finished the same build first, its result is kept and ours discarded (they are equal by
 * construction: same recipe).
 */
export function ensureCached(name: string, recipe: unknown, build: (tmpDir: string) => Promise<void>): Promise<string> {
  const dir = cacheDir(name, recipe);
  const pending = inFlight.get(dir);
  if (pending) return pending;
  const job = (async (): Promise<string> => {
    if (existsSync(dir)) return dir;
    const root = cacheRoot();
    mkdirSync(root, { recursive: true });
    sweepAbandoned(root);
    const base = dir.slice(root.length + 1);
    const tmp = join(root, `.${base}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(tmp);
    try {
      await build(tmp);
      try {
        renameSync(tmp, dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // rename(2) onto a non-empty directory fails: someone else won the race with the same recipe.
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(dir)) rmSync(tmp, { recursive: true, force: true });
        else throw err;
      }
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
    return dir;
  })();
  inFlight.set(dir, job);
  job.then(
    () => inFlight.delete(dir),
    () => inFlight.delete(dir),
  );
  return job;
}
