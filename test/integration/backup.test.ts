import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { mungeKey, k3sToken } from '../../server/services/role-secrets.js';
import { NodeIdentity } from '../../server/services/node-identity.js';
import { openStore } from '../../server/store/index.js';
import { CLI_MAIN, cliProcess, type CliResult } from '../support/cli.js';
import { restoreBackup } from '../../server/backup/restore.js';
import { TSX_IMPORT } from '../support/tsx.js';
import { waitFor } from '../support/wait.js';

/**
 * `rackseed backup create|restore` as an operator runs them, against a real `rackseed serve` on loopback: a backup
 * taken while the server writes, restored into an empty data directory that a second server then runs on.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-backup-'));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const INVENTORY = [
  'cluster: { name: t }',
  'groups:',
  '  g: {}',
  'nodes:',
  '  - { name: n1, mac: "02:00:00:00:00:01", ip: 10.0.0.1, group: g }',
  '  - { name: n2, mac: "02:00:00:00:00:02", ip: 10.0.0.2, group: g }',
  '',
].join('\n');

function configFile(name: string): string {
  writeFileSync(path.join(dir, 'inventory.yaml'), INVENTORY);
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `data_dir: ./${name}\ninventory: ./inventory.yaml\nhttp:\n  listen: 127.0.0.1\n  port: 0\ntftp:\n  enabled: false\ntorrent:\n  enabled: false\nconvergence:\n  enabled: false\nlog:\n  level: info\n`,
  );
  return file;
}

interface Served {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

async function serve(config: string): Promise<Served> {
  const child = spawn(process.execPath, ['--import', TSX_IMPORT, CLI_MAIN, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await waitFor('the server to listen', () => /"msg":"HTTP listening"/.test(output) && /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1], 60_000, 50);
  return {
    child,
    url,
    async stop() {
      child.kill('SIGTERM');
      await exit;
    },
  };
}

// The C locale, as cron and minimal systemd units run it.
const rackseed = (config: string, ...args: string[]): Promise<CliResult> => cliProcess(['--config', config, ...args], { env: { LC_ALL: 'C', LANG: 'C' }, timeoutMs: 120_000 });

/** The archive's member names, as tar lists them (directories end in "/"). */
function members(archive: string): string[] {
  return execFileSync('tar', ['-tzPf', archive], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

const mode = (file: string) => statSync(file).mode & 0o777;
const mac = (i: number) => `02:00:00:aa:${Math.floor(i / 256).toString(16).padStart(2, '0')}:${(i % 256).toString(16).padStart(2, '0')}`;

describe('rackseed backup', () => {
  const configA = configFile('a');
  const dataA = path.join(dir, 'a');
  const configB = configFile('b');
  const dataB = path.join(dir, 'b');
  const archive = path.join(dir, 'backup.tar.gz');
  let seen: string[] = [];
  let pinA = '';
  let tokenA = '';

  beforeAll(async () => {
    // Some state as a working server has it: node host keys with their pins, the server's key, role secrets, BMC
    // passwords, a pillar file, leases, and images that a backup leaves out.
    mkdirSync(dataA, { recursive: true, mode: 0o700 });
    const identity = new NodeIdentity(dataA);
    await identity.hostKey('n1', '10.0.0.1');
    await identity.hostKey('n2', '10.0.0.2');
    await identity.serverPublicKey();
    mungeKey(dataA);
    k3sToken(dataA);
    writeFileSync(path.join(dataA, 'secrets', 'bmc.yaml'), 'default: { username: admin, password: s3cret }\n', { mode: 0o600 });
    mkdirSync(path.join(dataA, 'pillar', 'nodes'), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(dataA, 'pillar', 'nodes', 'n1.yaml'), 'x: 1\n', { mode: 0o600 });
    // A UTF-8 name: under the C locale tar lists it as octal escapes, which the restore refused as "control characters".
    writeFileSync(path.join(dataA, 'pillar', 'nodes', 'café.yaml'), 'y: 2\n', { mode: 0o600 });
    // A name the restore would refuse is left out by create, and said so.
    writeFileSync(path.join(dataA, 'pillar', 'nodes', 'odd\\name.yaml'), 'z: 3\n', { mode: 0o600 });
    mkdirSync(path.join(dataA, 'files', 'images', 'big'), { recursive: true });
    writeFileSync(path.join(dataA, 'files', 'images', 'big', 'rootfs.tar'), 'pretend gigabytes');
    mkdirSync(path.join(dataA, 'files', 'installer'), { recursive: true });
    writeFileSync(path.join(dataA, 'files', 'installer', 'vmlinuz'), 'kernel');
    writeFileSync(path.join(dataA, 'files', 'site.txt'), 'an operator file served under /files');
    mkdirSync(path.join(dataA, '.image-work', '1.2.half-built-XXXX'), { recursive: true });
    const store = await openStore({ kind: 'sqlite', path: path.join(dataA, 'rackseed.db') });
    await store.claimLease({ ip: '10.0.0.1', mac: '02:00:00:00:00:01', state: 'bound', expiresAt: Date.now() + 3_600_000, hostname: 'n1' });
    await store.close();
    pinA = readFileSync(path.join(dataA, 'nodes', 'n1', 'known_host'), 'utf8');
  });

  it('create: while the server runs and writes, one 0600 archive of the state, a store snapshot, no images', async () => {
    const server = await serve(configA);
    try {
      tokenA = readFileSync(path.join(dataA, 'admin-token'), 'utf8').trim();
      // The server records every unknown machine that asks for a boot script: it writes all through the backup.
      let writing = true;
      let i = 0;
      const writer = (async () => {
        while (writing) {
          const m = mac(i++);
          const r = await fetch(`${server.url}/ipxe/machine?mac=${m}`);
          if (r.ok) seen.push(m);
        }
      })();
      await waitFor('some machines discovered', () => seen.length >= 20, 30_000);
      const before = [...seen];
      const r = await rackseed(configA, 'backup', 'create', archive);
      writing = false;
      await writer;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^store\s+SQLite snapshot, schema version \d+, \d+ node\(s\), 1 lease\(s\)$/m);
      expect(r.stdout).toMatch(/^left out\s+files\/images: images and the installer are rebuilt/m);
      expect(mode(archive)).toBe(0o600);
      expect(r.stdout).toMatch(/^skipped\s+"pillar\/nodes\/odd\\\\name\.yaml": a name with control characters, a backslash or bytes that are not UTF-8, not taken$/m);
      seen = before;

      const list = members(archive);
      for (const f of ['admin-token', 'node-token-key', 'callback-token-key', 'ssh/id_ed25519', 'ssh/known_hosts', 'nodes/n1/known_host', 'nodes/n1/ssh_host_ed25519_key', 'secrets/munge.key', 'secrets/k3s-token', 'secrets/bmc.yaml', 'pillar/nodes/n1.yaml', 'files/site.txt', '.rackseed-backup/manifest.json', '.rackseed-backup/store.db']) {
        expect(list).toContain(f);
      }
      // Never the live database files (a WAL database copied file by file is not a database), images or scratch.
      for (const f of list) expect(f).not.toMatch(/^(rackseed\.db|files\/images|files\/installer|\.image-work|server\.pid)/);

      const again = await rackseed(configA, 'backup', 'create', archive);
      expect(again.code).toBe(1);
      expect(again.stderr).toBe(`rackseed: ${archive} exists: give --force to replace it\n`);
      const withImages = path.join(dir, 'with-images.tar.gz');
      expect((await rackseed(configA, 'backup', 'create', withImages, '--with-images')).code).toBe(0);
      expect(members(withImages)).toEqual(expect.arrayContaining(['files/images/big/rootfs.tar', 'files/installer/vmlinuz']));
      expect(members(withImages).some((f) => f.startsWith('.image-work'))).toBe(false);
      expect(mode(withImages)).toBe(0o600);
    } finally {
      await server.stop();
    }
  });

  it('restore: a dry run writes nothing; --yes fills an empty data directory with 0600 secrets, and a server there sees the same fleet', async () => {
    const dry = await rackseed(configB, 'backup', 'restore', archive);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^would restore:$/m);
    expect(dry.stdout).toMatch(/^ {2}nodes\/n1\/known_host$/m);
    expect(dry.stdout).toContain('dry run: nothing written');
    expect(existsSync(dataB)).toBe(false);

    const r = await rackseed(configB, 'backup', 'restore', archive, '--yes');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const secret of ['admin-token', 'metrics-token', 'node-token-key', 'callback-token-key', 'ssh/id_ed25519', 'nodes/n1/ssh_host_ed25519_key', 'secrets/munge.key', 'secrets/k3s-token', 'secrets/bmc.yaml', 'pillar/nodes/n1.yaml']) {
      expect([secret, mode(path.join(dataB, secret))]).toEqual([secret, 0o600]);
    }
    expect(mode(path.join(dataB, 'secrets'))).toBe(0o700);
    expect(readFileSync(path.join(dataB, 'nodes', 'n1', 'known_host'), 'utf8')).toBe(pinA);
    expect(readFileSync(path.join(dataB, 'pillar', 'nodes', 'café.yaml'), 'utf8')).toBe('y: 2\n');
    expect(existsSync(path.join(dataB, 'pillar', 'nodes', 'odd\\name.yaml'))).toBe(false);
    expect(readFileSync(path.join(dataB, 'ssh', 'known_hosts'), 'utf8')).toBe(readFileSync(path.join(dataA, 'ssh', 'known_hosts'), 'utf8'));
    expect(existsSync(path.join(dataB, 'files', 'images'))).toBe(false);
    const db = new Database(path.join(dataB, 'rackseed.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();

    const server = await serve(configB);
    try {
      // The restored admin token is the one clients hold.
      const { nodes } = (await (await fetch(`${server.url}/api/v1/nodes`, { headers: { authorization: `Bearer ${tokenA}` } })).json()) as { nodes: Array<{ name: string; inInventory: boolean; state: string }> };
      expect(nodes.filter((n) => n.inInventory).map((n) => [n.name, n.state])).toEqual([['n1', 'assigned'], ['n2', 'assigned']]);
      // Every machine discovered before the backup started is in it (the snapshot may hold a few more, not fewer).
      const discovered = new Set(nodes.filter((n) => !n.inInventory && n.state === 'discovered').map((n) => n.name));
      for (const m of seen) expect(discovered).toContain(m);
      // The pinned key is kept, not made anew: the node's identity survives the server.
      const key = await new NodeIdentity(dataB).hostKey('n1', '10.0.0.1');
      expect(pinA).toContain(key.publicKey.split(' ')[1]);

      // A restore beside a running server is refused, even with --force.
      const busy = await rackseed(configB, 'backup', 'restore', archive, '--yes', '--force');
      expect(busy.code).toBe(1);
      expect(busy.stderr).toBe(`rackseed: a rackseed server (PID ${server.child.pid}) is running on ${dataB}: stop it before restoring\n`);
    } finally {
      await server.stop();
    }
    const store = await openStore({ kind: 'sqlite', path: path.join(dataB, 'rackseed.db') });
    expect((await store.listLeases()).map((l) => [l.ip, l.mac, l.state])).toEqual([['10.0.0.1', '02:00:00:00:00:01', 'bound']]);
    await store.close();

    // Existing state is replaced only with --force, and what is replaced gets the archive's content and a secret's mode.
    const existing = await rackseed(configB, 'backup', 'restore', archive, '--yes');
    expect(existing.code).toBe(1);
    expect(existing.stderr).toMatch(/^rackseed: the restore would replace existing state \(.*\): give --force to replace it\n$/);
    writeFileSync(path.join(dataB, 'admin-token'), 'x'.repeat(40));
    chmodSync(path.join(dataB, 'admin-token'), 0o644);
    const forced = await rackseed(configB, 'backup', 'restore', archive, '--yes', '--force');
    expect(forced.code).toBe(0);
    expect(readFileSync(path.join(dataB, 'admin-token'), 'utf8').trim()).toBe(tokenA);
    expect(mode(path.join(dataB, 'admin-token'))).toBe(0o600);
  });

  it('serve: refused while a restore writes the data directory', async () => {
    let during: CliResult | undefined;
    await restoreBackup({
      file: archive,
      dataDir: dataB,
      store: { kind: 'sqlite', path: path.join(dataB, 'rackseed.db') },
      yes: true,
      force: true,
      // At the restore's first change, with its marker in place: the server must not open the store.
      step: async () => {
        during ??= await cliProcess(['--config', configB, 'serve'], { timeoutMs: 30_000 });
      },
    });
    expect(during).toEqual({ code: 1, stdout: '', stderr: `rackseed: a rackseed backup restore (PID ${process.pid}) is writing the data directory ${dataB}: start the server once it has finished\n` });
    expect(existsSync(path.join(dataB, 'server.pid'))).toBe(false);
  });

  it('serve: refused beside a server already running on its data directory; a marker of a dead process blocks nothing', async () => {
    // A marker left by a restore that was killed (its process is gone) does not stop a server.
    const gone = execFileSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).trim();
    writeFileSync(path.join(dataB, 'server.pid'), JSON.stringify({ pid: Number(gone), startTicks: 1, role: 'restore' }));
    const server = await serve(configB);
    try {
      const second = await cliProcess(['--config', configB, 'serve'], { timeoutMs: 30_000 });
      expect(second.code).toBe(1);
      expect(second.stderr).toBe(`rackseed: a rackseed server (PID ${server.child.pid}) is already running on the data directory ${dataB}: stop it first, or give this server a data_dir of its own\n`);
    } finally {
      await server.stop();
    }
    expect(existsSync(path.join(dataB, 'server.pid'))).toBe(false);
  });

  it('create with a PostgreSQL store: the data directory alone, and the output says pg_dump backs up the store', async () => {
    const dataP = path.join(dir, 'p');
    mkdirSync(dataP, { mode: 0o700 });
    writeFileSync(path.join(dataP, 'admin-token'), `${'t'.repeat(40)}\n`, { mode: 0o600 });
    const config = path.join(dir, 'p.yaml');
    writeFileSync(config, 'data_dir: ./p\nstore:\n  kind: postgres\n  url: postgres://rackseed@127.0.0.1:1/rackseed\n');
    const file = path.join(dir, 'postgres.tar.gz');
    const r = await rackseed(config, 'backup', 'create', file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^store\s+not included: the PostgreSQL store is not in the data directory: back it up with pg_dump$/m);
    expect(members(file).sort()).toEqual(['.rackseed-backup/', '.rackseed-backup/manifest.json', 'admin-token']);
  });

  describe('a hostile archive is refused with nothing written', () => {
    const configC = configFile('c');
    const dataC = path.join(dir, 'c');
    const stage = path.join(dir, 'hostile');
    const outside = path.join(dir, 'outside');

    beforeAll(() => {
      mkdirSync(path.join(stage, 'sub'), { recursive: true });
      mkdirSync(outside, { recursive: true });
      // A real manifest and a real secret beside the bad entry: the entry alone is what makes it refused.
      execFileSync('tar', ['-xzf', archive, '-C', stage, '.rackseed-backup/manifest.json', 'admin-token']);
    });

    /** An archive of the good entries and the bad ones; -P keeps names as given ("../", a leading "/"). */
    function hostile(name: string, ...bad: string[]): string {
      const file = path.join(dir, `${name}.tar.gz`);
      execFileSync('tar', ['-czPf', file, '--no-recursion', '-C', stage, '.rackseed-backup', '.rackseed-backup/manifest.json', 'admin-token', ...bad]);
      return file;
    }

    async function refused(file: string, reason: string, victim: string): Promise<void> {
      for (const args of [[], ['--yes'], ['--yes', '--force']]) {
        const r = await rackseed(configC, 'backup', 'restore', file, ...args);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`rackseed: ${file} is refused, nothing was written: `);
        expect(r.stderr).toContain(reason);
      }
      expect(existsSync(dataC)).toBe(false);
      expect(existsSync(victim)).toBe(false);
    }

    it('an entry with "../"', async () => {
      writeFileSync(path.join(stage, 'escape'), 'owned');
      const file = hostile('dotdot', '-C', path.join(stage, 'sub'), '../escape');
      expect(members(file)).toContain('../escape');
      // Relative to the data directory, ../escape is this file.
      await refused(file, '"../escape": a path with ".." in it', path.join(dir, 'escape'));
    });

    it('an absolute path', async () => {
      const victim = path.join(outside, 'absolute');
      writeFileSync(victim, 'owned');
      const file = hostile('absolute', victim);
      expect(members(file)).toContain(victim);
      rmSync(victim);
      await refused(file, `"${victim}": an absolute path`, victim);
    });

    it('a symbolic link pointing out, and a file written through it', async () => {
      symlinkSync(outside, path.join(stage, 'ssh'));
      writeFileSync(path.join(outside, 'authorized_keys'), 'ssh-ed25519 AAAA attacker');
      const file = hostile('symlink', 'ssh', 'ssh/authorized_keys');
      rmSync(path.join(outside, 'authorized_keys'));
      expect(members(file)).toEqual(expect.arrayContaining(['ssh', 'ssh/authorized_keys']));
      await refused(file, '"ssh": a symbolic link (a backup holds only files and directories)', path.join(outside, 'authorized_keys'));
    });
  });
});
