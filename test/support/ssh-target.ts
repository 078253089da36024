import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ImageRecipe } from '../../server/model/image.js';
import { ensureCached } from './cache.js';
import { cachedBootstrap } from './debian-image.js';
import { Netns } from './netns.js';
import { startRelay, type Relay } from '../../server/lab/relay.js';

export { startRelay, type Relay };

/**
 * Real SSH targets for state-engine tests: Debian 12 root file systems entered over a real sshd, each in its own
 * network namespace on a shared bridge, with its own host key. Nothing is booted: sshd runs chrooted as PID 1 of a
 * private PID, mount and UTS namespace, so a target's mounts vanish with it and `ps` inside shows only the target.
 *
 *   base tree   debootstrap (cached by recipe, shared with test/support/debian-image.ts's cache)
 *   test layer  an overlay upper dir (cached): an offline apt repository with a few packages that are NOT installed,
 *               apt sources pointing only at it, sshd configured for root by key, the image's host keys removed
 *   per target  an overlay upper dir: its host key, the test's authorized key, its hostname
 *
 * The test process stays in the host network namespace. It reaches a target through a loopback TCP port that is
 * relayed over a Unix socket to a forwarder inside the hub namespace, which connects to the target's sshd over the
 * bridge: both ends are real TCP, and when sshd dies its connections close as they would on a real node.
 */

/** The base tree: systemd is in it so the same tree also boots under systemd-nspawn (test/support/systemd-target.ts). */
export const TARGET_BASE_RECIPE: Pick<ImageRecipe, 'release' | 'variant' | 'packages'> = {
  release: 'bookworm',
  variant: 'minbase',
  // python3 and python3-apt: Ansible (the peer bench:states compares against) needs them on its targets.
  packages: ['openssh-server', 'iproute2', 'procps', 'kmod', 'systemd-sysv', 'dbus', 'python3', 'python3-apt'],
};

/** Small packages in the offline repository, not installed: `apt-get install -y tree` works with no network. */
export const OFFLINE_PACKAGES = ['hello', 'tree', 'jq', 'libjq1', 'libonig5'];

/** Where the offline repository lives inside a target. */
export const OFFLINE_REPO = '/var/local/rackseed-debs';

// Bump when the layer is made differently without its inputs changing.
const LAYER_FORMAT = 1;

const SSHD_CONFIG = `# rackseed test target: root by key only, one host key made per target.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
`;

const LAYER_SCRIPT = `
set -e
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
apt() { apt-get -q -o APT::Sandbox::User=root "$@"; }
mkdir -p ${OFFLINE_REPO}
cd ${OFFLINE_REPO}
apt download ${OFFLINE_PACKAGES.join(' ')}
for f in *.deb; do
  dpkg-deb -f "$f"
  printf 'Filename: ./%s\\nSize: %s\\nSHA256: %s\\n\\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
done > Packages
echo 'deb [trusted=yes] file:${OFFLINE_REPO} ./' > /etc/apt/sources.list
rm -rf /var/lib/apt/lists/*
mkdir -p /var/lib/apt/lists/partial
apt update
apt-get clean
rm -f /etc/ssh/ssh_host_* /etc/hostname
`;

export interface TargetTree {
  /** The debootstrap tree (read-only lower layer). */
  base: string;
  /** The test layer (read-only lower layer above base). */
  layer: string;
}

/** Builds (first call: about a minute) or finds the cached base tree and test layer. */
export async function ensureTargetTree(): Promise<TargetTree> {
  const base = await cachedBootstrap(TARGET_BASE_RECIPE);
  const key = { base: TARGET_BASE_RECIPE, offline: OFFLINE_PACKAGES, sshd: SSHD_CONFIG, script: LAYER_SCRIPT, format: LAYER_FORMAT };
  const dir = await ensureCached('ssh-target-layer', key, async (tmp) => {
    const layer = path.join(tmp, 'layer');
    const work = path.join(tmp, 'work');
    const root = path.join(tmp, 'root');
    mkdirSync(path.join(layer, 'etc/ssh/sshd_config.d'), { recursive: true, mode: 0o755 });
    writeFileSync(path.join(layer, 'etc/ssh/sshd_config.d/rackseed-test.conf'), SSHD_CONFIG, { mode: 0o644 });
    mkdirSync(work);
    mkdirSync(root);
    // A private mount namespace: the overlay, /proc and /dev go away with the shell, whatever happens to it.
    const mountAndRun = [
      'set -e',
      `mount -t overlay overlay -o ${overlayOptions([base], layer, work)} ${q(root)}`,
      `mount -t proc proc ${q(root)}/proc`,
      `mount --bind /dev ${q(root)}/dev`,
      `exec chroot ${q(root)} /bin/sh -c ${q(LAYER_SCRIPT)}`,
    ].join('\n');
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', mountAndRun], { encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0) throw new Error(`building the ssh target layer failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
    rmSync(work, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  });
  return { base, layer: path.join(dir, 'layer') };
}

function q(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Overlay options; lowers are listed top first, as the kernel wants them. */
export function overlayOptions(lowers: string[], upper: string, work: string): string {
  for (const p of [...lowers, upper, work]) if (/[,:\s]/.test(p)) throw new Error(`overlay path ${p} contains a separator`);
  return `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work}`;
}

/** Writes a target's own files into its (not yet mounted) upper dir: host key, authorized key, hostname. */
export function prepareUpper(upper: string, hostname: string, authorizedKey: string): { hostKeyLine: string } {
  mkdirSync(upper, { mode: 0o755 });
  mkdirSync(path.join(upper, 'etc/ssh'), { recursive: true, mode: 0o755 });
  mkdirSync(path.join(upper, 'root/.ssh'), { recursive: true, mode: 0o700 });
  chmodSync(path.join(upper, 'root'), 0o700);
  const hostKey = path.join(upper, 'etc/ssh/ssh_host_ed25519_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `root@${hostname}`, '-f', hostKey]);
  writeFileSync(path.join(upper, 'root/.ssh/authorized_keys'), authorizedKey, { mode: 0o600 });
  writeFileSync(path.join(upper, 'etc/hostname'), `${hostname}\n`, { mode: 0o644 });
  writeFileSync(path.join(upper, 'etc/hosts'), `127.0.0.1 localhost\n127.0.1.1 ${hostname}\n`, { mode: 0o644 });
  const [type, blob] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
  return { hostKeyLine: `${type} ${blob}` };
}

/**
 * Login shells a target's root can be given instead of the tree's bash, with the Debian packages (installed on the
 * host: test/apt-packages.txt) that make each one work in the tree: its binary, its system startup files, and the
 * libraries the tree lacks.
 */
export const LOGIN_SHELLS = {
  '/bin/tcsh': ['tcsh'],
  '/bin/bsd-csh': ['csh'],
  '/usr/bin/fish': ['fish', 'fish-common', 'libpcre2-32-0'],
} as const satisfies Record<string, readonly string[]>;
export type LoginShell = keyof typeof LOGIN_SHELLS;

/**
 * Makes `shell` root's login shell in a target's (not yet mounted) upper dir: the host's files of its packages are
 * copied in (host and tree are both Debian 12) and the upper dir gets its own /etc/passwd and /etc/shells. The
 * host's /etc/passwd is only read, never written.
 */
export function giveRootLoginShell(upper: string, tree: TargetTree, shell: LoginShell): void {
  const paths = execFileSync('dpkg', ['-L', ...LOGIN_SHELLS[shell]], { encoding: 'utf8' })
    .split('\n')
    .filter((f) => f.startsWith('/') && existsSync(f))
    // /bin and /lib are symlinks into /usr in the tree: a real /bin in the upper dir would hide the tree's.
    .map((f) => path.join(realpathSync(path.dirname(f)), path.basename(f)));
  for (const file of new Set(paths)) {
    const isDir = !lstatSync(file).isSymbolicLink() && statSync(file).isDirectory();
    for (const dir of ancestors(isDir ? file : path.dirname(file))) {
      // Made with the host's mode: an upper dir's attributes are what the target sees for the merged one.
      if (!existsSync(path.join(upper, dir))) mkdirSync(path.join(upper, dir), { mode: statSync(dir).mode & 0o7777 });
    }
    if (isDir || statSync(file).isDirectory()) continue;
    if (lstatSync(file).isSymbolicLink()) symlinkSync(readlinkSync(file), path.join(upper, file));
    else cpSync(file, path.join(upper, file), { preserveTimestamps: true });
  }
  const treeFile = (file: string): string => readFileSync(existsSync(path.join(tree.layer, file)) ? path.join(tree.layer, file) : path.join(tree.base, file), 'utf8');
  const passwd = treeFile('etc/passwd').replace(/^(root:(?:[^:\n]*:){5})[^:\n]*$/m, `$1${shell}`);
  if (!passwd.includes(`:/root:${shell}\n`)) throw new Error(`no root line in the tree's /etc/passwd to give ${shell}`);
  writeFileSync(path.join(upper, 'etc/passwd'), passwd, { mode: 0o644 });
  writeFileSync(path.join(upper, 'etc/shells'), `${treeFile('etc/shells').trimEnd()}\n${shell}\n`, { mode: 0o644 });
}

/** `/a/b/c` -> `/a`, `/a/b`, `/a/b/c`. */
function ancestors(dir: string): string[] {
  const parts = dir.split('/').filter(Boolean);
  return parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')}`);
}

/** A client key pair for a test run. */
export function makeClientKey(dir: string): { privateKey: string; privateKeyFile: string; publicKey: string } {
  const file = path.join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'rackseed-test-client', '-f', file]);
  return { privateKey: readFileSync(file, 'utf8'), privateKeyFile: file, publicKey: readFileSync(`${file}.pub`, 'utf8') };
}

// ---------------------------------------------------------------------------------------------------------------
// Network: a hub namespace with a bridge, targets on it, and a relay from loopback in the host namespace
// (server/lab/relay.ts).

function waitForLine(child: ChildProcess, stream: 'stdout' | 'stderr', pattern: RegExp, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => finish(new Error(`${what} not ready after ${ms} ms:\n${seen}`)), ms);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (pattern.test(seen)) finish();
    };
    const onExit = (code: number | null, signal: string | null): void => finish(new Error(`${what} exited (${code ?? signal}) before it was ready:\n${seen}`));
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      child[stream]?.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve();
    };
    child[stream]?.on('data', onData);
    child.once('exit', onExit);
  });
}


export interface TargetNetwork {
  netns: Netns;
  hub: string;
  bridge: string;
  /** A new namespace on the bridge with address 10.77.0.<host>/24 on its interface. */
  addHost(suffix: string, host: number): { ns: string; ip: string; ifname: string };
}

/** The hub namespace and bridge (10.77.0.1/24; only inside namespaces this run made). */
export function createTargetNetwork(prefix?: string): TargetNetwork {
  const netns = new Netns(prefix);
  const hub = netns.addNamespace('hub');
  const bridge = netns.addBridge(hub, 'br');
  netns.addAddress(hub, bridge, '10.77.0.1/24');
  return {
    netns,
    hub,
    bridge,
    addHost(suffix, host) {
      const ns = netns.addNamespace(suffix);
      const [ifname] = netns.addVeth(ns, `${suffix}e`, hub, `${suffix}p`, { masterB: bridge });
      const ip = `10.77.0.${host}`;
      netns.addAddress(ns, ifname, `${ip}/24`);
      spawnSync('ip', ['-n', ns, 'route', 'add', 'default', 'via', '10.77.0.1'], { stdio: 'ignore' });
      return { ns, ip, ifname };
    },
  };
}

/** The PIDs of a process's direct children (Linux /proc). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// SSH targets

/** What any SSH-reachable target (a chrooted sshd here, a systemd container in systemd-target.ts) offers a client. */
export interface SshEndpoint {
  /** The target's hostname, used as the node name. */
  name: string;
  ns: string;
  /** Its address on the bridge (as other targets see it). */
  ip: string;
  /** Where the test process connects: a loopback relay into the namespace. */
  host: string;
  port: number;
  /** The pin, as provisioning records it: `ssh-ed25519 AAAA...`. */
  hostKeyLine: string;
  /** The client private key (text) that root accepts, and its file. */
  privateKey: string;
  privateKeyFile: string;
}

export interface SshTarget extends SshEndpoint {
  /** The target's root as the host sees it while sshd lives (`/proc/<sshd>/root`). */
  root: string;
  /** sshd's PID in the host's PID namespace (PID 1 of the target's). */
  sshdPid: number;
  /** Runs a command inside the target without SSH (nsenter), for checking what a transport did. */
  sh(command: string): { status: number | null; stdout: string; stderr: string };
  /** SIGKILLs sshd: its PID namespace dies with it, so every connection to the target drops at once. */
  kill(): void;
  /** What sshd logged so far (`-e`: to stderr), e.g. to prove that a refused client never authenticated. */
  log(): string;
}

export interface SshTargets {
  targets: SshTarget[];
  network: TargetNetwork;
  stop(): Promise<void>;
}

export interface StartSshTargetsOptions {
  /** Netns name prefix (default: per process). */
  prefix?: string;
  /** Hostnames (default node01, node02, ...). */
  names?: string[];
  /** root's login shell per target (default, or undefined: the tree's bash). */
  loginShells?: Array<LoginShell | undefined>;
}

/**
 * Starts `n` targets (a second or so once the tree is cached). `stop()` kills only what this call started,
 * removes the namespaces and the per-target directories; it also runs on a failure half way.
 */
export async function startSshTargets(n: number, options: StartSshTargetsOptions = {}): Promise<SshTargets> {
  const tree = await ensureTargetTree();
  const network = createTargetNetwork(options.prefix);
  const { netns } = network;
  const runDir = mkdtempSync(path.join(tmpdir(), 'rackseed-ssh-targets-'));
  // A run that dies without stop(): Netns kills the processes on exit, this removes the per-target files.
  const removeRunDir = (): void => rmSync(runDir, { recursive: true, force: true });
  process.once('exit', removeRunDir);
  const relays: Relay[] = [];
  const launchers: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(relays.splice(0).map((r) => r.close()));
    await Promise.all(launchers.splice(0).map((c) => netns.stop(c, 'SIGTERM', 5_000)));
    netns.cleanup();
    removeRunDir();
    process.removeListener('exit', removeRunDir);
  };
  try {
    const client = makeClientKey(runDir);
    const targets = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const name = options.names?.[i] ?? `node${String(i + 1).padStart(2, '0')}`;
        const { ns, ip } = network.addHost(`t${i}`, 11 + i);
        const dir = path.join(runDir, `t${i}`);
        mkdirSync(dir);
        const { hostKeyLine } = prepareUpper(path.join(dir, 'upper'), name, client.publicKey);
        const shell = options.loginShells?.[i];
        if (shell) giveRootLoginShell(path.join(dir, 'upper'), tree, shell);
        const launcher = launchSshd(netns, ns, tree, dir, name);
        launchers.push(launcher);
        let log = '';
        launcher.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
        await waitForLine(launcher, 'stderr', /Server listening on/, 15_000, `sshd of ${name}`);
        const sshdPid = childPids(launcher.pid!)[0];
        if (sshdPid === undefined) throw new Error(`sshd of ${name} has no PID`);
        netns.track(sshdPid);
        const relay = await startRelay(netns, network.hub, path.join(runDir, `t${i}.sock`), ip, 22);
        relays.push(relay);
        const target: SshTarget = {
          name,
          ns,
          ip,
          host: '127.0.0.1',
          port: relay.port,
          hostKeyLine,
          privateKey: client.privateKey,
          privateKeyFile: client.privateKeyFile,
          root: `/proc/${sshdPid}/root`,
          sshdPid,
          sh: (command) => nsenterSh(sshdPid, command),
          kill: () => netns.kill(sshdPid, 'SIGKILL'),
          log: () => log,
        };
        return target;
      }),
    );
    return { targets, network, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * `ip netns exec NS unshare ... sh`: private PID/mount/UTS namespaces (sshd is PID 1, the overlay and the kernel
 * file systems are mounted only there), then sshd chrooted into the overlay. --kill-child: when the launcher dies,
 * sshd dies, and with it every process of the target.
 */
function launchSshd(netns: Netns, ns: string, tree: TargetTree, dir: string, hostname: string): ChildProcess {
  const root = path.join(dir, 'root');
  const work = path.join(dir, 'work');
  mkdirSync(root);
  mkdirSync(work);
  const script = [
    'set -e',
    `mount -t overlay overlay -o ${overlayOptions([tree.layer, tree.base], path.join(dir, 'upper'), work)} ${q(root)}`,
    `mount -t proc proc ${q(root)}/proc`,
    `mount --rbind /sys ${q(root)}/sys`,
    `mount --rbind /dev ${q(root)}/dev`,
    `mount -t tmpfs -o mode=0755 tmpfs ${q(root)}/run`,
    `mkdir -p ${q(root)}/run/sshd ${q(root)}/run/lock`,
    `hostname ${q(hostname)}`,
    `exec chroot ${q(root)} /usr/sbin/sshd -D -e`,
  ].join('\n');
  return netns.spawn(ns, 'unshare', ['--mount', '--propagation', 'private', '--pid', '--uts', '--fork', '--kill-child', 'sh', '-c', script]);
}

/** A shell inside the namespaces and root of `pid`. */
export function nsenterSh(pid: number, command: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('nsenter', ['-t', String(pid), '-m', '-u', '-n', '-p', '-r', '-w', 'sh', '-c', command], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Names of the files in the offline repository (for tests that want to see what is there). */
export function offlineDebs(tree: TargetTree): string[] {
  return readdirSync(path.join(tree.layer, OFFLINE_REPO.slice(1))).filter((f) => f.endsWith('.deb'));
}
