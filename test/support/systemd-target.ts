import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  childPids,
  createTargetNetwork,
  ensureTargetTree,
  makeClientKey,
  nsenterSh,
  overlayOptions,
  prepareUpper,
  startRelay,
  type Relay,
  type SshEndpoint,
  type TargetNetwork,
} from './ssh-target.js';
import { waitFor } from './wait.js';

/**
 * A target with a real systemd as PID 1, for service.* states: the SSH targets' tree booted with
 * `systemd-nspawn --boot` in its own network namespace, sshd started by systemd's ssh.service.
 *
 * This machine's PID 1 is not systemd and it has no system D-Bus, so nspawn runs with `--register=no` (no
 * machined) and `--keep-unit` (no scope unit from the host's systemd); without them it stops at "Failed to open
 * system bus: No such file or directory". The overlay is mounted in a private mount namespace (unshare) so it
 * vanishes with nspawn, and the container boots in about two seconds.
 *
 * Several targets started by one startSystemdTargets() call share one bridge (10.77.0.0/24) and reach each other
 * by their `ip`, as the nodes of one cluster do.
 */

export interface SystemdTarget extends SshEndpoint {
  /** The container's systemd, in the host's PID namespace. */
  initPid: number;
  /** Runs a command inside the container without SSH (nsenter into systemd's namespaces). */
  sh(command: string): { status: number | null; stdout: string; stderr: string };
  /** What nspawn and the container printed (the boot console), for diagnostics. */
  console(): string;
  /**
   * Powers the container off (SIGTERM to nspawn: a clean shutdown), then removes what was made for it. For a
   * target of startSystemdTarget() that is everything; for one of startSystemdTargets() the network stays up for
   * the others (their stop() removes it).
   */
  stop(): Promise<void>;
}

export interface StartSystemdTargetOptions {
  prefix?: string;
  name?: string;
  /** Read-only layers stacked above the target tree, top first (e.g. one with more packages). */
  layers?: string[];
}

export interface StartSystemdTargetsOptions {
  /** Netns name prefix (default: per process). */
  prefix?: string;
  /** Host names (default sysd01, sysd02, ...). */
  names?: string[];
  /** Read-only layers stacked above the target tree, top first; every target gets the same stack. */
  layers?: string[];
}

export interface SystemdTargets {
  targets: SystemdTarget[];
  network: TargetNetwork;
  /** Powers every container off and removes the network and the per-target files. */
  stop(): Promise<void>;
}

/** The host PID of the process that is PID 1 in its own PID namespace among `pids`. */
function namespaceInit(pids: number[]): number | undefined {
  for (const pid of pids) {
    try {
      if (/^NSpid:\s+\d+\s+1$/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) return pid;
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const child of childPids(queue.shift()!)) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** One target on one network; its stop() powers it off and removes it alone. */
export async function startSystemdTarget(options: StartSystemdTargetOptions = {}): Promise<SystemdTarget> {
  const lab = await startSystemdTargets(1, {
    ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
    names: [options.name ?? 'sysd01'],
    ...(options.layers ? { layers: options.layers } : {}),
  });
  const target = lab.targets[0]!;
  return { ...target, stop: lab.stop };
}

/**
 * Boots `n` containers at once on one bridge (addresses 10.77.0.21, .22, ...). `stop()` kills only what this call
 * started, removes the namespaces and the per-target directories; it also runs on a failure half way.
 */
export async function startSystemdTargets(n: number, options: StartSystemdTargetsOptions = {}): Promise<SystemdTargets> {
  if (!existsSync('/usr/bin/systemd-nspawn')) throw new Error('systemd-nspawn is missing: apt-get install -y --no-install-recommends systemd-container');
  const tree = await ensureTargetTree();
  const lowers = [...(options.layers ?? []), tree.layer, tree.base];
  const network = createTargetNetwork(options.prefix);
  const runDir = mkdtempSync(path.join(tmpdir(), 'rackseed-systemd-target-'));
  // A run that dies without stop(): Netns kills the processes on exit, this removes the per-target files.
  const removeRunDir = (): void => rmSync(runDir, { recursive: true, force: true });
  process.once('exit', removeRunDir);
  const containers: Container[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(containers.splice(0).map((c) => c.stop()));
    network.netns.cleanup();
    removeRunDir();
    process.removeListener('exit', removeRunDir);
  };
  try {
    const client = makeClientKey(runDir);
    const targets = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const name = options.names?.[i] ?? `sysd${String(i + 1).padStart(2, '0')}`;
        const dir = path.join(runDir, `s${i}`);
        mkdirSync(dir);
        const container = new Container(network, dir, name);
        containers.push(container);
        return container.boot(`s${i}`, 21 + i, lowers, client);
      }),
    );
    return { targets, network, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** One booted container: its nspawn, its relay, and how to stop them. */
class Container {
  private nspawn: ChildProcess | undefined;
  private relay: Relay | undefined;
  private output = '';

  constructor(
    private readonly network: TargetNetwork,
    private readonly dir: string,
    private readonly name: string,
  ) {}

  async stop(): Promise<void> {
    const { netns } = this.network;
    await this.relay?.close();
    this.relay = undefined;
    if (this.nspawn) {
      // What the container started is ours too; SIGKILL stragglers if the clean shutdown did not finish them. Adopted
      // while they run, so that one gone by then is not signalled (its number may belong to another process now).
      const pids = descendants(this.nspawn.pid!);
      for (const pid of pids) netns.track(pid);
      await netns.stop(this.nspawn, 'SIGTERM', 20_000);
      for (const pid of pids) netns.kill(pid, 'SIGKILL');
      this.nspawn = undefined;
    }
  }

  async boot(suffix: string, host: number, lowers: string[], client: { privateKey: string; privateKeyFile: string; publicKey: string }): Promise<SystemdTarget> {
    const { netns } = this.network;
    const { name, dir } = this;
    const { ns, ip } = this.network.addHost(suffix, host);
    const upper = path.join(dir, 'upper');
    const { hostKeyLine } = prepareUpper(upper, name, client.publicKey);
    const root = path.join(dir, 'root');
    const work = path.join(dir, 'work');
    mkdirSync(root);
    mkdirSync(work);
    const script = [
      'set -e',
      `mount -t overlay overlay -o ${overlayOptions(lowers, upper, work)} '${root}'`,
      `exec systemd-nspawn --quiet --boot --register=no --keep-unit --console=passive --link-journal=no --resolv-conf=off --timezone=off --hostname=${name} --network-namespace-path=/run/netns/${ns} -D '${root}'`,
    ].join('\n');
    // Not through `ip netns exec`: that remounts /sys without the cgroup file systems, and nspawn then fails with
    // "Failed to determine whether the unified cgroups hierarchy is used". nspawn joins the namespace by path
    // instead. unshare and sh exec, so this PID is nspawn's.
    const launcher = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.nspawn = launcher;
    if (launcher.pid === undefined) throw new Error('cannot start systemd-nspawn');
    netns.track(launcher.pid);
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-65_536);
    };
    launcher.stdout?.on('data', keep);
    launcher.stderr?.on('data', keep);
    const initPid = await waitFor(
      `the systemd of ${name}`,
      () => {
        if (launcher.exitCode !== null || launcher.signalCode !== null) throw new Error(`systemd-nspawn of ${name} exited (${launcher.exitCode ?? launcher.signalCode}):\n${this.output}`);
        return namespaceInit(descendants(launcher.pid!));
      },
      20_000,
    );
    // "offline" until systemd listens on its private socket, "starting" until every start job is done.
    const state = (): string => nsenterSh(initPid, 'systemctl is-system-running').stdout.trim();
    await waitFor(`${name} to finish booting`, () => ['running', 'degraded'].includes(state()), 60_000, 100).catch((error: Error) => {
      throw new Error(`${error.message} (state ${state()}):\n${this.output}`);
    });
    this.relay = await startRelay(netns, this.network.hub, path.join(dir, 'ssh.sock'), ip, 22);
    await waitFor(`sshd in ${name}`, () => nsenterSh(initPid, 'systemctl is-active ssh').stdout.trim() === 'active', 20_000);
    return {
      name,
      ns,
      ip,
      host: '127.0.0.1',
      port: this.relay.port,
      hostKeyLine,
      privateKey: client.privateKey,
      privateKeyFile: client.privateKeyFile,
      initPid,
      sh: (command) => nsenterSh(initPid, command),
      console: () => this.output,
      stop: () => this.stop(),
    };
  }
}
