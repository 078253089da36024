import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createBackup } from '../../server/backup/create.js';
import { restoreBackup } from '../../server/backup/restore.js';
import { openStore } from '../../server/store/index.js';

/**
 * `backup restore --yes --force` is all or nothing: made to fail at every one of its steps in turn (a hook throws
 * where an I/O error, a full disk or a failed rename would), it leaves the data directory, the store and its WAL
 * files byte for byte as they were, and nothing beside them.
 */
const root = mkdtempSync(path.join(tmpdir(), 'rackseed-rollback-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const archive = path.join(root, 'backup.tar.gz');

beforeAll(async () => {
  const source = path.join(root, 'source');
  const w = (rel: string, text: string, mode = 0o600) => {
    mkdirSync(path.dirname(path.join(source, rel)), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(source, rel), text, { mode });
  };
  w('admin-token', 'a'.repeat(40));
  w('secrets/munge.key', 'munge from the backup');
  w('nodes/n1/known_host', 'n1 ssh-ed25519 BACKUP', 0o644);
  w('nodes/n1/ssh_host_ed25519_key', 'private key from the backup');
  w('nodes/n2/known_host', 'n2 ssh-ed25519 BACKUP', 0o644);
  w('files/site.txt', 'site file from the backup', 0o644);
  const store = await openStore({ kind: 'sqlite', path: path.join(source, 'rackseed.db') });
  await store.claimLease({ ip: '10.0.0.1', mac: '02:00:00:00:00:01', state: 'bound', expiresAt: Date.now() + 3_600_000, hostname: 'n1' });
  await store.close();
  await createBackup({ file: archive, dataDir: source, store: { kind: 'sqlite', path: path.join(source, 'rackseed.db') }, withImages: false, force: false });
});

interface Target {
  dataDir: string;
  store: string;
}

/** What a running site has before the restore: files the archive replaces, files it does not hold, a store with a WAL. */
function existingState(name: string, storeOutside: boolean): Target {
  const dataDir = path.join(root, name, 'data');
  const store = storeOutside ? path.join(root, name, 'db', 'rackseed.db') : path.join(dataDir, 'rackseed.db');
  const w = (file: string, text: string, mode = 0o600) => {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, text, { mode });
    chmodSync(file, mode);
  };
  w(path.join(dataDir, 'admin-token'), 'o'.repeat(40), 0o644);
  w(path.join(dataDir, 'nodes', 'n1', 'known_host'), 'n1 ssh-ed25519 OLD', 0o644);
  w(path.join(dataDir, 'nodes', 'n3', 'known_host'), 'n3 only here', 0o644);
  w(path.join(dataDir, 'files', 'images', 'img', 'rootfs.tar'), 'an image the backup leaves out', 0o644);
  // A directory whose mode the restore tightens (secrets get 0700).
  mkdirSync(path.join(dataDir, 'secrets'), { recursive: true });
  chmodSync(path.join(dataDir, 'secrets'), 0o755);
  w(path.join(dataDir, 'secrets', 'munge.key'), 'the munge key in use', 0o640);
  w(store, 'the store in use');
  w(`${store}-wal`, 'its write-ahead log, not yet checkpointed');
  w(`${store}-shm`, 'its shared memory index');
  return { dataDir, store };
}

/** Every path below `dir` with its type, permission bits and content; undefined when `dir` does not exist. */
function snapshot(dir: string): Record<string, string> | undefined {
  if (!existsSync(dir)) return undefined;
  const out: Record<string, string> = {};
  const visit = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(path.join(dir, r));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out[`${r}/`] = mode;
        visit(r);
      } else {
        out[r] = `${mode} ${readFileSync(path.join(dir, r)).toString('base64')}`;
      }
    }
  };
  visit('');
  return out;
}

/** Runs a forced restore whose `n`th step fails (0: none); returns the error, and how many steps there were. */
async function restoreFailingAt(t: Target, n: number, failRollback?: (what: string) => boolean): Promise<{ error?: Error; steps: number }> {
  let steps = 0;
  try {
    await restoreBackup({
      file: archive,
      dataDir: t.dataDir,
      store: { kind: 'sqlite', path: t.store },
      yes: true,
      force: true,
      step: (what) => {
        if (what.startsWith('rollback: ')) {
          if (failRollback?.(what)) throw new Error(`injected rollback failure at ${what}`);
          return;
        }
        steps += 1;
        if (steps === n) throw new Error(`injected failure at step ${n} (${what})`);
      },
    });
    return { steps };
  } catch (e) {
    return { error: e as Error, steps };
  }
}

describe('a restore that fails part way puts everything back', () => {
  it.each([
    ['over existing state, the store in the data directory', 'inside', (name: string) => existingState(name, false)],
    ['over existing state, the store in a directory of its own', 'outside', (name: string) => existingState(name, true)],
    // Nor does its parent: the stage is made there, and the rollback removes both again.
    ['into a data directory that does not exist yet', 'fresh', (name: string) => ({ dataDir: path.join(root, name, 'new', 'data'), store: path.join(root, name, 'new', 'data', 'rackseed.db') })],
  ])('%s: failing at each step in turn changes nothing', async (_what, name, make) => {
    const base = path.join(root, name);
    mkdirSync(base, { recursive: true });
    // A dry count: a restore that succeeds, to learn how many steps there are.
    mkdirSync(path.join(root, `${name}-count`), { recursive: true });
    const counted = await restoreFailingAt(make(`${name}-count`), 0);
    expect(counted.error).toBeUndefined();
    expect(counted.steps).toBeGreaterThan(10);

    for (let n = 1; n <= counted.steps; n++) {
      rmSync(base, { recursive: true, force: true });
      mkdirSync(base);
      const t = make(name);
      const before = snapshot(base);
      const { error } = await restoreFailingAt(t, n);
      expect(error?.message).toMatch(new RegExp(`^the restore failed and was undone, nothing was changed: injected failure at step ${n} `));
      expect([n, snapshot(base)]).toEqual([n, before]);
    }
  });

  it('a real failure part way (a directory where the backup has a file) puts back the files already replaced', async () => {
    const t = existingState('real', false);
    // files/site.txt comes after admin-token and the node files in the archive: they are replaced by then.
    mkdirSync(path.join(t.dataDir, 'files', 'site.txt', 'inside'), { recursive: true });
    const before = snapshot(path.join(root, 'real'));
    const { error } = await restoreFailingAt(t, 0);
    expect(error?.message).toBe(`the restore failed and was undone, nothing was changed: ${path.join(t.dataDir, 'files', 'site.txt')} is a directory where the backup has a file`);
    expect(snapshot(path.join(root, 'real'))).toEqual(before);
    expect(readFileSync(path.join(t.dataDir, 'admin-token'), 'utf8')).toBe('o'.repeat(40));
  });

  it('a restore that succeeds replaces the old store and WAL, and leaves no originals, stage or marker behind', async () => {
    const t = existingState('success', false);
    const { error } = await restoreFailingAt(t, 0);
    expect(error).toBeUndefined();
    expect(readFileSync(path.join(t.dataDir, 'admin-token'), 'utf8')).toBe('a'.repeat(40));
    expect(readFileSync(path.join(t.dataDir, 'nodes', 'n3', 'known_host'), 'utf8')).toBe('n3 only here');
    expect((lstatSync(path.join(t.dataDir, 'secrets')).mode & 0o777).toString(8)).toBe('700');
    expect(existsSync(`${t.store}-wal`)).toBe(false);
    expect(existsSync(`${t.store}-shm`)).toBe(false);
    expect(readFileSync(t.store).subarray(0, 15).toString()).toBe('SQLite format 3');
    expect(existsSync(path.join(t.dataDir, 'server.pid'))).toBe(false);
    expect(readdirSync(path.dirname(t.dataDir)).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('when an original cannot be put back, the error names where it is, and everything else is put back', async () => {
    // The last step places the store, after every data file is in place: it fails, and so does putting the old
    // admin token back.
    const { steps } = await restoreFailingAt(existingState('stuck-count', false), 0);
    const u = existingState('stuck', false);
    const before = snapshot(u.dataDir)!;
    const original = readFileSync(path.join(u.dataDir, 'admin-token'));
    const failed = await restoreFailingAt(u, steps, (what) => what.endsWith(`-> ${path.join(u.dataDir, 'admin-token')}`));
    expect(failed.error?.message).toContain(`injected failure at step ${steps} (rename `);
    const m = /^the restore failed \(injected failure at step \d+ .*\) and could not be undone completely; finish by hand:\n {2}(\S+): the original is at (\S+) \(injected rollback failure at .*\)$/.exec(failed.error?.message ?? '');
    expect(m, failed.error?.message).not.toBeNull();
    expect(m![1]).toBe(path.join(u.dataDir, 'admin-token'));
    expect(readFileSync(m![2]!)).toEqual(original);
    // The rollback directory sits beside the data directory and mirrors its paths.
    expect(path.dirname(m![2]!)).toMatch(new RegExp(`^${path.join(root, 'stuck', '.data.rollback-')}`));
    // Everything but that one file is as it was; the restored token stands where the old one was.
    const after = snapshot(u.dataDir)!;
    expect({ ...after, 'admin-token': before['admin-token'] }).toEqual(before);
    expect(readFileSync(path.join(u.dataDir, 'admin-token'), 'utf8')).toBe('a'.repeat(40));
    expect(existsSync(path.join(u.dataDir, 'server.pid'))).toBe(false);
  });
});
