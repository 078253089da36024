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
 */

export interface SystemdTarget {
  name: string;
  ns: string;
  ip: string;
  /** Where the test process connects (a loopback relay into the namespace). */
  host: string;
  port: number;
  hostKeyLine: string;
  privateKey: string;
  privateKeyFile: string;
  /** The container's systemd, in the host's PID namespace. */
  initPid: number;
  /** Runs a command inside the container without SSH (nsenter into systemd's namespaces). */
  sh(command: string): { status: number | null; stdout: string; stderr: string };
  /** What nspawn and the container printed (the boot console), for diagnostics. */
  console(): string;
  /** Powers the container off (SIGTERM to nspawn: a clean shutdown), then removes what this call made. */
  stop(): Promise<void>;
}

export interface StartSystemdTargetOptions {
  prefix?: string;
  name?: string;
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

export async function startSystemdTarget(options: StartSystemdTargetOptions = {}): Promise<SystemdTarget> {
  if (!existsSync('/usr/bin/systemd-nspawn')) throw new Error('systemd-nspawn is missing: apt-get install -y --no-install-recommends systemd-container');
  const tree = await ensureTargetTree();
  const name = options.name ?? 'sysd01';
  const network: TargetNetwork = createTargetNetwork(options.prefix);
  const { netns } = network;
  const runDir = mkdtempSync(path.join(tmpdir(), 'rackseed-systemd-target-'));
  // A run that dies without stop(): Netns kills the processes on exit, this removes the per-target files.
  const removeRunDir = (): void => rmSync(runDir, { recursive: true, force: true });
  process.once('exit', removeRunDir);
  let nspawn: ChildProcess | undefined;
  let relay: Relay | undefined;
  let output = '';
  const stop = async (): Promise<void> => {
    await relay?.close();
    relay = undefined;
    if (nspawn) {
      // What the container started is ours too; SIGKILL stragglers if the clean shutdown did not finish them.
      const pids = descendants(nspawn.pid!);
      await netns.stop(nspawn, 'SIGTERM', 20_000);
      for (const pid of pids) {
        netns.track(pid);
        netns.kill(pid, 'SIGKILL');
      }
      nspawn = undefined;
    }
    netns.cleanup();
    removeRunDir();
    process.removeListener('exit', removeRunDir);
  };
  try {
    const { ns, ip } = network.addHost('s0', 21);
    const client = makeClientKey(runDir);
    const upper = path.join(runDir, 'upper');
    const { hostKeyLine } = prepareUpper(upper, name, client.publicKey);
    const root = path.join(runDir, 'root');
    const work = path.join(runDir, 'work');
    mkdirSync(root);
    mkdirSync(work);
    const script = [
      'set -e',
      `mount -t overlay overlay -o ${overlayOptions([tree.layer, tree.base], upper, work)} '${root}'`,
      `exec systemd-nspawn --quiet --boot --register=no --keep-unit --console=passive --link-journal=no --resolv-conf=off --timezone=off --hostname=${name} --network-namespace-path=/run/netns/${ns} -D '${root}'`,
    ].join('\n');
    // Not through `ip netns exec`: that remounts /sys without the cgroup file systems, and nspawn then fails with
    // "Failed to determine whether the unified cgroups hierarchy is used". nspawn joins the namespace by path
    // instead. unshare and sh exec, so this PID is nspawn's.
    nspawn = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (nspawn.pid === undefined) throw new Error('cannot start systemd-nspawn');
    netns.track(nspawn.pid);
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-65_536);
    };
    nspawn.stdout?.on('data', keep);
    nspawn.stderr?.on('data', keep);
    const launcher = nspawn;
    const initPid = await waitFor(
      'the container\'s systemd',
      () => {
        if (launcher.exitCode !== null || launcher.signalCode !== null) throw new Error(`systemd-nspawn exited (${launcher.exitCode ?? launcher.signalCode}):\n${output}`);
        return namespaceInit(descendants(launcher.pid!));
      },
      20_000,
    );
    // "offline" until systemd listens on its private socket, "starting" until every start job is done.
    const state = (): string => nsenterSh(initPid, 'systemctl is-system-running').stdout.trim();
    await waitFor('the container to finish booting', () => ['running', 'degraded'].includes(state()), 60_000, 100).catch((error: Error) => {
      throw new Error(`${error.message} (state ${state()}):\n${output}`);
    });
    relay = await startRelay(netns, network.hub, path.join(runDir, 'ssh.sock'), ip, 22);
    await waitFor('sshd in the container', () => nsenterSh(initPid, 'systemctl is-active ssh').stdout.trim() === 'active', 20_000);
    return {
      name,
      ns,
      ip,
      host: '127.0.0.1',
      port: relay.port,
      hostKeyLine,
      privateKey: client.privateKey,
      privateKeyFile: client.privateKeyFile,
      initPid,
      sh: (command) => nsenterSh(initPid, command),
      console: () => output,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
