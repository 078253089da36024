import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { unmountBelow } from './mounts.js';

/**
 * A content-addressed build cache for expensive artefacts (debootstrap trees, images, the installer, test
 * initramfs images): made once per host and kept outside any repository. A directory's name carries a hash of what
 * made it, so a changed recipe gets a new directory rather than a stale hit; builds happen in a temporary sibling
 * renamed into place in one step, so an interrupted build never leaves a half artefact under the final name.
 * The lab (`${XDG_CACHE_HOME:-~/.cache}/rackseed/lab`) and the test suite (`.../rackseed-test`) each have a root.
 */

/** `${XDG_CACHE_HOME:-$HOME/.cache}`. */
export function xdgCacheHome(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  // The XDG spec says a relative value is invalid and must be ignored.
  return xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.cache');
}

export function labCacheRoot(): string {
  return join(xdgCacheHome(), 'rackseed', 'lab');
}

/** JSON with object keys sorted, so the hash does not depend on the order a recipe was written in. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

export function cacheKeyHash(key: unknown): string {
  return createHash('sha256').update(stableJson(key) ?? 'undefined').digest('hex').slice(0, 16);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporary build directories whose builder is gone (a killed run), never a live builder's. */
function sweepAbandoned(root: string): void {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return;
  }
  for (const entry of entries) {
    const m = /^\..*\.tmp-(\d+)-[0-9a-f]+$/.exec(entry);
    if (!m || pidAlive(Number(m[1]))) continue;
    // A killed debootstrap leaves the host's /proc and /sys mounted in its tree: detach them, never delete through
    // them; a tree that cannot be detached stays for the operator.
    if (unmountBelow(join(root, entry)).length === 0) rmSync(join(root, entry), { recursive: true, force: true });
  }
}

const inFlight = new Map<string, Promise<string>>();

/** Where the artefact for `key` lives under `root` (`<root>/<name>-<hash>`); it may not exist yet. */
export function cachedPath(root: string, name: string, key: unknown): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`cache name ${JSON.stringify(name)} is not a plain file name`);
  return join(root, `${name}-${cacheKeyHash(key)}`);
}

/**
 * The cache directory for `key`, filled by `build(tmpDir)` first when missing; concurrent callers in this process
 * share one build, and if another process finished the same build first its (equal) result is kept.
 */
export function ensureCached(name: string, key: unknown, build: (tmpDir: string) => Promise<void>, root = labCacheRoot()): Promise<string> {
  const dir = cachedPath(root, name, key);
  const pending = inFlight.get(dir);
  if (pending) return pending;
  const job = (async (): Promise<string> => {
    if (existsSync(dir)) return dir;
    mkdirSync(root, { recursive: true });
    sweepAbandoned(root);
    const tmp = join(root, `.${name}-${cacheKeyHash(key)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(tmp);
    try {
      await build(tmp);
      try {
        renameSync(tmp, dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // rename(2) onto a non-empty directory fails: another process finished the same build first; keep its result.
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
  const forget = (): void => void inFlight.delete(dir);
  job.then(forget, forget);
  return job;
}
