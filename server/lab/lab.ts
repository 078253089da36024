import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RackseedError } from '../model/errors.js';
import type { NodeView } from '../services/node-view.js';
import { ensureLabImage, ensureLabInstaller, importInstaller, importLabImage, LAB_IMAGE_NAME, type Say } from './artefacts.js';
import type { RunResult } from './netns.js';
import { createProvisioningNetwork, type ProvisioningNetwork } from './network.js';
import { labConfig, labInventory, labMachines, LAB_SERVER_IP, LAB_SERVER_PORT, type LabMachine } from './plan.js';
import { startVm, type Vm } from './qemu.js';
import { startRelay, type Relay } from './relay.js';
import { startLabServer, type LabServer } from './server-process.js';
import { pinnedSshOptions } from '../services/pinned-ssh.js';
import { processStartTicks, stillRunning } from '../util/process-identity.js';
import { LAB_MARKER_FILE, readLabState, removeLabState, writeLabState, type LabProcess, type LabState } from './state-file.js';
import { labDown } from './down.js';
import { labApi, watchLab, type LabApi, type LabWatch } from './watch.js';

/**
 * The virtual lab: the whole job on one machine. A private provisioning network in a network namespace, a rackseed
 * server on it (full DHCP, TFTP, HTTP), and QEMU machines with blank disks that PXE boot, install the lab image over
 * the swarm, reboot into it and are converged into their roles (one Slurm controller, the rest Slurm compute) until
 * ready. The server's HTTP is reachable from the host on a loopback port (a relay; the host gets no new interface).
 */

export interface LabUpOptions {
  /** The lab's directory: config, inventory, the server's data, the machines' disks and serial logs, the state file. */
  dir: string;
  /** Machines: the first is the Slurm controller, the others compute nodes. Default 3. */
  nodes?: number;
  firmware?: 'bios' | 'uefi';
  /** The host loopback port the dashboard and API are relayed to; 0 picks a free one. Default 8480. */
  port?: number;
  memoryMiB?: number;
  diskMiB?: number;
  /** Progress lines. */
  say?: Say;
}

export interface RunningLab {
  readonly dir: string;
  /** The name prefix of every namespace and interface of this lab. */
  readonly prefix: string;
  readonly network: ProvisioningNetwork;
  /** The server as the host reaches it (through the relay): http://127.0.0.1:PORT. */
  readonly url: string;
  readonly token: string;
  readonly machines: readonly LabMachine[];
  readonly vms: readonly Vm[];
  readonly server: LabServer;
  readonly api: LabApi;
  readonly watch: LabWatch;
  /** Resolves with every machine's view once all are ready; rejects on timeout with each machine's state. */
  waitUntilReady(timeoutMs: number): Promise<Map<string, NodeView>>;
  /** Runs a command on a lab machine over SSH as rackseed does: the server's key, the host key it pinned. */
  ssh(machine: string, command: string, timeoutMs?: number): RunResult;
  /** Stops everything this lab started and deletes its namespaces; safe to call twice. */
  down(): Promise<void>;
}

const APT_HINT = 'apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils ipxe-qemu ipxe ovmf debootstrap zstd e2fsprogs busybox-static cpio openssh-client aria2 dosfstools fdisk';

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new RackseedError('LAB_FAILED', 'rackseed lab needs root: it creates network namespaces, serves DHCP, runs QEMU and builds images (try: sudo npx rackseed lab up)');
  }
}

function requireTools(): void {
  // aria2c, mkfs.vfat and sfdisk go into the installer, which is built from this host's packages.
  const missing = ['ip', 'qemu-system-x86_64', 'qemu-img', 'debootstrap', 'ssh', 'aria2c', 'mkfs.vfat', 'sfdisk'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0);
  if (missing.length) throw new RackseedError('LAB_FAILED', `rackseed lab needs ${missing.join(', ')}: ${APT_HINT}`, { missing });
}

/** Makes `dir` a clean lab directory: a previous lab's leftovers are taken down, nothing else is ever deleted. */
async function prepareDir(dir: string, say: Say): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const previous = readLabState(dir);
  if (previous) {
    const owner = previous.processes.find((p) => p.role === 'lab');
    if (owner && owner.pid !== process.pid && stillRunning(owner)) {
      throw new RackseedError('LAB_FAILED', `a lab is already running from ${dir} (rackseed lab up, pid ${owner.pid}); stop it with: rackseed lab down --dir ${dir}`);
    }
    say(`taking down what a previous lab in ${dir} left behind`);
    await labDown(dir, say);
  }
  const marker = path.join(dir, LAB_MARKER_FILE);
  if (!existsSync(marker) && readdirSync(dir).length > 0) {
    throw new RackseedError('LAB_FAILED', `${dir} is not empty and not a lab directory: pick an empty or new directory with --dir`);
  }
  for (const entry of ['data', 'vms', 'server.log', 'rackseed.yaml', 'inventory.yaml', 'http.sock']) rmSync(path.join(dir, entry), { recursive: true, force: true });
  writeFileSync(marker, 'made by rackseed lab up; rackseed lab down stops what it started\n');
}

/** Unix socket paths are limited to 108 bytes. */
function socketPath(dir: string): string {
  const inDir = path.join(dir, 'http.sock');
  return inDir.length < 100 ? inDir : path.join(mkdtempSync(path.join(tmpdir(), 'rackseed-lab-')), 'http.sock');
}

export async function labUp(opts: LabUpOptions): Promise<RunningLab> {
  const say = opts.say ?? (() => {});
  requireRoot();
  requireTools();
  const dir = path.resolve(opts.dir);
  const machines = labMachines(opts.nodes ?? 3);
  await prepareDir(dir, say);

  const state: LabState = { version: 1, prefix: `rl${process.pid.toString(36)}`, namespaces: [], processes: [] };
  const record = (role: LabProcess['role'], name: string, pid: number): void => {
    state.processes.push({ role, name, pid, startTicks: processStartTicks(pid) ?? -1 });
    writeLabState(dir, state);
  };
  record('lab', 'rackseed lab up', process.pid);

  say('preparing the lab image and the installer (built once, then cached)');
  const [imageDir, installer] = await Promise.all([ensureLabImage(say), ensureLabInstaller(say)]);

  const vms: Vm[] = [];
  let network: ProvisioningNetwork | undefined;
  let server: LabServer | undefined;
  let relay: Relay | undefined;
  let watch: LabWatch | undefined;
  let downed: Promise<void> | undefined;
  const sock = socketPath(dir);

  const teardown = async (): Promise<void> => {
    await watch?.stop();
    for (const vm of vms) if (!vm.exited) await vm.kill().catch(() => undefined);
    await relay?.close().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    network?.netns.cleanup();
    rmSync(sock, { force: true });
    // The disks are worth nothing without the lab's server; the logs and the config stay for a look afterwards.
    for (const m of machines) rmSync(path.join(dir, 'vms', `${m.name}.qcow2`), { force: true });
    removeLabState(dir);
  };
  const down = (): Promise<void> => (downed ??= teardown());

  try {
    network = createProvisioningNetwork(LAB_SERVER_IP, 24, {
      prefix: state.prefix,
      handleSignals: false,
      onNamespace: (ns) => {
        state.namespaces.push(ns);
        writeLabState(dir, state);
      },
    });
    const net = network;
    say(`lab network: namespace ${net.ns}, bridge ${net.bridge}, server ${LAB_SERVER_IP}`);

    writeFileSync(path.join(dir, 'rackseed.yaml'), labConfig(net.bridge));
    writeFileSync(path.join(dir, 'inventory.yaml'), labInventory(machines, LAB_IMAGE_NAME));
    const dataDir = path.join(dir, 'data');
    importInstaller(dataDir, installer);
    await importLabImage(imageDir, dataDir, `http://${LAB_SERVER_IP}:${LAB_SERVER_PORT}`);

    server = await startLabServer(net.netns, net.ns, dir, (pid) => record('server', 'rackseed serve', pid));
    say(`rackseed serve is running in the lab (pid ${server.pid}, log ${server.logFile})`);
    relay = await startRelay(net.netns, net.ns, sock, LAB_SERVER_IP, LAB_SERVER_PORT, opts.port ?? 8480);
    record('relay', 'http relay', relay.forwarderPid);
    const url = `http://127.0.0.1:${relay.port}`;
    state.url = url;
    writeLabState(dir, state);
    const token = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const api = labApi(url, token);

    const firmware = opts.firmware ?? 'bios';
    for (const [i, m] of machines.entries()) {
      const vm = await startVm({
        netns: net.netns,
        ns: net.ns,
        bridge: net.bridge,
        workDir: path.join(dir, 'vms'),
        name: m.name,
        mac: m.mac,
        firmware,
        diskMiB: opts.diskMiB ?? 4096,
        memoryMiB: opts.memoryMiB ?? 1024,
        bootOrder: 'network',
        reboot: 'reset',
        tapSuffix: `t${i}`,
        smbios: { manufacturer: 'rackseed-lab', product: 'qemu-vm', serial: `LAB-${m.name}` },
      });
      vms.push(vm);
      record('vm', m.name, vm.pid);
      say(`${m.name}: powered on (${firmware.toUpperCase()}, MAC ${m.mac}, QEMU pid ${vm.pid}, serial console ${vm.serialLogFile})`);
    }
    watch = watchLab(api, machines, say);
    const activeWatch = watch;

    return {
      dir,
      prefix: state.prefix,
      network: net,
      url,
      token,
      machines,
      vms,
      server,
      api,
      watch: activeWatch,
      async waitUntilReady(timeoutMs) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const latest = activeWatch.latest();
          if (machines.every((m) => latest.get(m.name)?.state === 'ready')) return latest;
          const dead = vms.find((vm) => vm.exited);
          if (dead) throw new RackseedError('LAB_FAILED', `${dead.name}'s QEMU exited (${dead.exited?.code ?? dead.exited?.signal}); its serial console: ${dead.serialLogFile}`);
          if (Date.now() > deadline) {
            const states = machines.map((m) => `${m.name} ${latest.get(m.name)?.state ?? 'unknown'}${latest.get(m.name)?.reason ? ` (${latest.get(m.name)?.reason})` : ''}`);
            throw new RackseedError('LAB_FAILED', `the lab was not ready after ${Math.round(timeoutMs / 1000)} s: ${states.join('; ')}`);
          }
          await new Promise((r) => setTimeout(r, 1_000));
        }
      },
      ssh(machine, command, timeoutMs = 30_000) {
        const m = machines.find((x) => x.name === machine);
        if (!m) throw new Error(`no lab machine ${machine}`);
        return net.netns.run(net.ns, 'ssh', [...pinnedSshOptions(dataDir, 5), '-o', 'IdentitiesOnly=yes', `root@${m.ip}`, command], timeoutMs);
      },
      down,
    };
  } catch (err) {
    await down();
    throw err;
  }
}
