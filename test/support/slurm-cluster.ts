import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../server/log.js';
import type { ResolvedNode } from '../../server/model/inventory.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { NodeIdentity } from '../../server/services/node-identity.js';
import { ReadinessService, type NodeReadinessReport } from '../../server/services/readiness-service.js';
import { StateService, type NodeRunReport } from '../../server/services/state-service.js';
import { syncStoreWithInventory } from '../../server/services/store-sync.js';
import { clusterFactsToStore } from '../../server/state/cluster-facts.js';
import { collectFacts } from '../../server/state/collect-facts.js';
import { openSshTransport } from '../../server/state/transport/ssh.js';
import type { Transport } from '../../server/state/types.js';
import { openStore, type ObservedStore } from '../../server/store/index.js';
import { STATES_DIR } from '../fixtures/roles/cluster.js';
import { ensureCached } from './cache.js';
import { ensureTargetTree, overlayOptions, type TargetTree } from './ssh-target.js';
import { startSystemdTargets, type SystemdTarget, type SystemdTargets } from './systemd-target.js';

/**
 * A real Slurm cluster for the role tests: one controller and N compute nodes, each a Debian 12 container booted
 * with systemd-nspawn (test/support/systemd-target.ts) on one bridge, converged by rackseed's own StateService over
 * SSH with the built-in states/ and checked by its ReadinessService, both on a real SQLite store.
 *
 * Slurm's packages are NOT installed in the containers: a cached layer carries them as an offline apt repository
 * (Debian 12's slurmctld, slurmd, slurm-client and munge with what they pull in), so the role's pkg.installed
 * states install them with apt as on a real node, only without a network.
 */

/** What the roles install on a Debian node (states/slurm/*.sls). */
export const SLURM_PACKAGES = ['munge', 'slurm-client', 'slurmd', 'slurmctld'];

/** Where the Slurm repository lives inside a target (beside ssh-target's OFFLINE_REPO). */
export const SLURM_REPO = '/var/local/rackseed-slurm-debs';

// Bump when the layer is made differently without its inputs changing.
const LAYER_FORMAT = 1;

/**
 * Runs in a chroot of [ssh-target layer, base tree]. The archive's sources are the ones debootstrap wrote into the
 * base tree (copied to /tmp/rackseed-archive.list by the caller, so no mirror name lives in this repository); apt
 * works on them with its own lists directory and resolves the packages against the tree's dpkg status, so exactly
 * the missing packages (with their recommends, as the pkg module installs) land in the repository.
 */
const LAYER_SCRIPT = `
set -e
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
ARCHIVE="-q -o APT::Sandbox::User=root -o Dir::Etc::SourceList=/tmp/rackseed-archive.list -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=/tmp/rackseed-lists -o Dir::Cache=/tmp/rackseed-cache -o Dir::Cache::Archives=${SLURM_REPO}"
mkdir -p /tmp/rackseed-lists/partial /tmp/rackseed-cache ${SLURM_REPO}/partial
apt-get $ARCHIVE update
apt-get $ARCHIVE install -y --download-only ${SLURM_PACKAGES.join(' ')}
rm -rf ${SLURM_REPO}/partial ${SLURM_REPO}/lock /tmp/rackseed-lists /tmp/rackseed-cache /tmp/rackseed-archive.list
cd ${SLURM_REPO}
for f in *.deb; do
  dpkg-deb -f "$f"
  printf 'Filename: ./%s\\nSize: %s\\nSHA256: %s\\n\\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
done > Packages
echo 'deb [trusted=yes] file:${SLURM_REPO} ./' > /etc/apt/sources.list.d/rackseed-slurm.list
rm -rf /var/lib/apt/lists/*
mkdir -p /var/lib/apt/lists/partial
apt-get -q -o APT::Sandbox::User=root update
apt-get clean
`;

function q(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Builds (first call: about half a minute with a reachable archive) or finds the cached Slurm layer. */
export async function ensureSlurmLayer(tree: TargetTree): Promise<string> {
  // The layer sits on the ssh-target layer: its cache directory (recipe hash in its name) is part of the key.
  const key = { below: path.basename(path.dirname(tree.layer)), packages: SLURM_PACKAGES, script: LAYER_SCRIPT, format: LAYER_FORMAT };
  const dir = await ensureCached('slurm-target-layer', key, async (tmp) => {
    const layer = path.join(tmp, 'layer');
    const work = path.join(tmp, 'work');
    const root = path.join(tmp, 'root');
    for (const d of [layer, work, root]) mkdirSync(d);
    mkdirSync(path.join(layer, 'tmp'));
    chmodSync(path.join(layer, 'tmp'), 0o1777);
    copyFileSync(path.join(tree.base, 'etc/apt/sources.list'), path.join(layer, 'tmp/rackseed-archive.list'));
    // A private mount namespace: the overlay, /proc and /dev go away with the shell, whatever happens to it.
    const mountAndRun = [
      'set -e',
      `mount -t overlay overlay -o ${overlayOptions([tree.layer, tree.base], layer, work)} ${q(root)}`,
      `mount -t proc proc ${q(root)}/proc`,
      `mount --bind /dev ${q(root)}/dev`,
      `exec chroot ${q(root)} /bin/sh -c ${q(LAYER_SCRIPT)}`,
    ].join('\n');
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', mountAndRun], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`building the slurm target layer failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
    rmSync(work, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  });
  return path.join(dir, 'layer');
}

export interface SlurmClusterOptions {
  controller: string;
  computes: string[];
}

/** The lab's inventory: `head` runs slurmctld, `compute` slurmd; `spare` holds nodes taken out of Slurm. */
export function slurmInventoryYaml(targets: readonly SystemdTarget[], computeMembers: ReadonlySet<string>, controller: string): string {
  const nodes = targets.map((t, i) => {
    const group = t.name === controller ? 'head' : computeMembers.has(t.name) ? 'compute' : 'spare';
    return `  - { name: ${t.name}, mac: "52:54:00:00:06:${(i + 1).toString(16).padStart(2, '0')}", ip: ${t.ip}, group: ${group} }\n`;
  });
  return [
    'cluster: { name: lab, domain: lab.example }',
    'groups:',
    '  head:',
    '    roles: [base, slurm-controller]',
    '    data: &container',
    // The containers share the host's kernel (and /proc/sys is read-only in them): persist sysctls, never apply.
    '      hpc: { apply_runtime: false }',
    '  compute:',
    '    roles: [base, slurm-compute]',
    '    data: *container',
    '  spare:',
    '    roles: [base]',
    '    data: *container',
    'nodes:',
    ...nodes.map((l) => l.trimEnd()),
    '',
  ].join('\n');
}

/**
 * The cluster and rackseed's services around it. Nodes reach the lifecycle state "installed" through the store's
 * events, as after a real installation, so readiness moves them to ready or failed.
 */
export class SlurmLab {
  readonly inventory: InventoryService;
  readonly states: StateService;
  readonly readiness: ReadinessService;
  private readonly byName: Map<string, SystemdTarget>;
  private computeMembers: Set<string>;

  private constructor(
    readonly targets: SystemdTargets,
    readonly store: ObservedStore,
    readonly work: string,
    readonly controller: string,
    computes: string[],
  ) {
    this.byName = new Map(targets.targets.map((t) => [t.name, t]));
    this.computeMembers = new Set(computes);
    writeFileSync(this.inventoryFile, this.inventoryText());
    const log = createLogger(process.env['SLURM_LAB_LOG'] === '1' ? 'info' : 'silent');
    this.inventory = new InventoryService(this.inventoryFile, log);
    const identity = new NodeIdentity(this.dataDir);
    const transportFor = (node: ResolvedNode): Promise<Transport> => this.transport(node.name);
    this.states = new StateService({
      inventory: this.inventory,
      store,
      identity,
      settings: { roots: [STATES_DIR], pillarDir: path.join(work, 'pillar'), concurrency: 8, commandTimeoutMs: 180_000, connectTimeoutMs: 10_000, sshPort: 22 },
      log,
      transportFor,
    });
    this.readiness = new ReadinessService({
      inventory: this.inventory,
      store,
      settings: { concurrency: 8, commandTimeoutMs: 30_000, connectTimeoutMs: 10_000, sshPort: 22 },
      log,
      transportFor,
    });
  }

  static async start(options: SlurmClusterOptions): Promise<SlurmLab> {
    const tree = await ensureTargetTree();
    const layer = await ensureSlurmLayer(tree);
    const names = [options.controller, ...options.computes];
    const targets = await startSystemdTargets(names.length, { names, layers: [layer] });
    const work = mkdtempSync(path.join(tmpdir(), 'rackseed-slurm-lab-'));
    let store: ObservedStore | undefined;
    try {
      store = await openStore({ kind: 'sqlite', path: path.join(work, 'rackseed.db') });
      await store.migrate();
      const lab = new SlurmLab(targets, store, work, options.controller, options.computes);
      await lab.syncStore();
      // As after a real installation: assigned (sync) -> provisioning -> installed.
      for (const type of ['provision_started', 'installed'] as const) {
        const results = await store.recordEvents(names.map((node) => ({ node, event: { type } })));
        const refused = results.filter((r) => !r.ok);
        if (refused.length > 0) throw new Error(`lifecycle event ${type} refused: ${JSON.stringify(refused)}`);
      }
      return lab;
    } catch (error) {
      await store?.close();
      await targets.stop();
      rmSync(work, { recursive: true, force: true });
      throw error;
    }
  }

  /** The server's data directory (role secrets under secrets/). */
  get dataDir(): string {
    return path.join(this.work, 'data');
  }

  get inventoryFile(): string {
    return path.join(this.work, 'inventory.yaml');
  }

  target(name: string): SystemdTarget {
    const t = this.byName.get(name);
    if (!t) throw new Error(`no target ${name}`);
    return t;
  }

  node(name: string): ResolvedNode {
    const n = this.inventory.inventory.nodes.get(name);
    if (!n) throw new Error(`${name} is not in the inventory`);
    return n;
  }

  transport(name: string): Promise<Transport> {
    const t = this.target(name);
    return openSshTransport({ target: t.name, host: t.host, port: t.port, privateKey: t.privateKey, knownHostKey: t.hostKeyLine, connectTimeoutMs: 10_000 });
  }

  private inventoryText(): string {
    return slurmInventoryYaml(this.targets.targets, this.computeMembers, this.controller);
  }

  private async syncStore(): Promise<void> {
    await syncStoreWithInventory(this.store, this.inventory.inventory, createLogger('silent'));
  }

  /** Rewrites the inventory file with these compute members (the rest become spare) and reloads it. */
  async setComputeMembers(computes: string[]): Promise<void> {
    this.computeMembers = new Set(computes);
    writeFileSync(this.inventoryFile, this.inventoryText());
    await this.inventory.reload();
    await this.syncStore();
  }

  /**
   * Collects every node's facts into the store first, then applies all nodes at once. slurm.conf lists each compute
   * node's CPUs and memory from the facts last collected from it; without this first step a node whose run
   * compiles before another node's run has collected would write a slurm.conf that the next run changes again.
   */
  async converge(names: string[]): Promise<NodeRunReport[]> {
    await Promise.all(
      names.map(async (name) => {
        const transport = await this.transport(name);
        try {
          await this.store.touchNode(name, { facts: clusterFactsToStore(await collectFacts(transport)) });
        } finally {
          await transport.close();
        }
      }),
    );
    // As ConvergenceService does before it applies: the node is configuring until readiness says ready or failed.
    for (const r of await this.store.recordEvents(names.map((node) => ({ node, event: { type: 'configure_started' } })))) {
      if (!r.ok) throw new Error(`configure_started refused for ${r.node}: ${r.error}`);
    }
    return this.states.run(names.map((n) => this.node(n)), 'apply');
  }

  /** As ConvergenceService does once the states applied: its readiness run decides configuring -> ready | failed. */
  async checkReadiness(names: string[]): Promise<NodeReadinessReport[]> {
    return this.readiness.run(names.map((n) => this.node(n)), undefined, { byConvergence: true });
  }

  async stop(): Promise<void> {
    await this.store.close();
    await this.targets.stop();
    rmSync(this.work, { recursive: true, force: true });
  }
}

/** Failed states and failed runs of a convergence, readable in an assertion or error message. */
export function convergeFailures(reports: readonly NodeRunReport[]): string[] {
  return reports.flatMap((r) => [
    ...(r.error ? [`${r.node}: ${r.error.code} ${r.error.message}`] : []),
    ...r.states.filter((s) => s.result !== true).map((s) => `${r.node} ${s.key}: ${s.comment} ${JSON.stringify(s.changes).slice(0, 600)}`),
  ]);
}
