import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { isValidHostname } from '../model/hostname.js';

const run = promisify(execFile);

export interface HostKey {
  /** The private key file as ssh-keygen wrote it (OpenSSH format). */
  privateKey: string;
  /** `ssh-ed25519 AAAA... root@<node>` */
  publicKey: string;
}

const HOST_KEY = 'ssh_host_ed25519_key';

/**
 * SSH identities: one host key per node, made once and kept, so a reinstall keeps the node's identity and the
 * server can pin it; and the server's own key pair, whose public half goes into every node's authorized_keys.
 *
 * Layout under the data directory (all keys 0600, directories 0700):
 *   nodes/<name>/ssh_host_ed25519_key(.pub)   the node's host key
 *   ssh/id_ed25519(.pub)                       the server's key
 *   nodes/<name>/known_host                    that node's pin line: `<name>[,<ip>] ssh-ed25519 AAAA...`
 *   ssh/known_hosts                            every node's pin line
 *
 * Pinning is a plain known_hosts file rather than a store field: ssh reads it as it is
 * (`-o UserKnownHostsFile=... -o StrictHostKeyChecking=yes`), and it is rebuilt from the per-node files, so it
 * cannot drift from the keys actually handed out.
 */
export class NodeIdentity {
  /** Key generation and the known_hosts rewrite run one at a time: two nodes asking at once must not interleave. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly dataDir: string) {}

  get knownHostsFile(): string {
    return path.join(this.dataDir, 'ssh', 'known_hosts');
  }

  get serverKeyFile(): string {
    return path.join(this.dataDir, 'ssh', 'id_ed25519');
  }

  /** The node's host key, made on first use; `address` (its IP, when the inventory has one) is pinned too. */
  hostKey(node: string, address?: string): Promise<HostKey> {
    if (!isValidHostname(node)) return Promise.reject(new Error(`${JSON.stringify(node)} is not a node name`));
    return this.serialized(async () => {
      const dir = path.join(this.dataDir, 'nodes', node);
      const file = path.join(dir, HOST_KEY);
      if (!existsSync(file)) await keygen(file, `root@${node}`);
      const key = { privateKey: readFileSync(file, 'utf8'), publicKey: readFileSync(`${file}.pub`, 'utf8').trim() };
      const [type, blob] = key.publicKey.split(/\s+/);
      const pin = `${address ? `${node},${address}` : node} ${type} ${blob}\n`;
      const pinFile = path.join(dir, 'known_host');
      if (!existsSync(pinFile) || readFileSync(pinFile, 'utf8') !== pin || !existsSync(this.knownHostsFile)) {
        writeFileSync(pinFile, pin, { mode: 0o644 });
        this.writeKnownHosts();
      }
      return key;
    });
  }

  /**
   * Forgets a node's identity: its host key and its pin, and its line in known_hosts. For a node removed from the
   * inventory: a machine added later under its name must get a key of its own (the old private key is on a disk that
   * leaves the rack), and the old pin must not vouch for whatever answers at its old address. True if there was one.
   */
  forget(node: string): Promise<boolean> {
    if (!isValidHostname(node)) return Promise.reject(new Error(`${JSON.stringify(node)} is not a node name`));
    return this.serialized(async () => {
      const dir = path.join(this.dataDir, 'nodes', node);
      if (!existsSync(dir)) return false;
      rmSync(dir, { recursive: true, force: true });
      this.writeKnownHosts();
      return true;
    });
  }

  /** The server's public key line, the key pair made on first use. */
  serverPublicKey(): Promise<string> {
    return this.serialized(async () => {
      if (!existsSync(this.serverKeyFile)) await keygen(this.serverKeyFile, 'rackseed');
      return readFileSync(`${this.serverKeyFile}.pub`, 'utf8').trim();
    });
  }

  private serialized<T>(job: () => Promise<T>): Promise<T> {
    const next = this.queue.then(job, job);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private writeKnownHosts(): void {
    const nodesDir = path.join(this.dataDir, 'nodes');
    const pins = existsSync(nodesDir) ? readdirSync(nodesDir).sort().map((n) => path.join(nodesDir, n, 'known_host')).filter((f) => existsSync(f)) : [];
    const dir = path.dirname(this.knownHostsFile);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.knownHostsFile}.tmp-${process.pid}`;
    writeFileSync(tmp, pins.map((f) => readFileSync(f, 'utf8')).join(''), { mode: 0o644 });
    renameSync(tmp, this.knownHostsFile);
  }
}

/** ssh-keygen writes into a temporary name first, so a crash never leaves a key without its public half. */
async function keygen(file: string, comment: string): Promise<void> {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const tmp = `${file}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  rmSync(`${tmp}.pub`, { force: true });
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', tmp]);
  chmodSync(tmp, 0o600);
  renameSync(`${tmp}.pub`, `${file}.pub`);
  renameSync(tmp, file);
}
