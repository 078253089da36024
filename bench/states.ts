/**
 * State apply, no-op: the same role of twenty states (bench/states/sls/benchrole.sls and its task-for-task
 * twin bench/states/ansible/playbook.yml) applied to N real targets (STATES_TARGETS, default 8: Debian 12
 * root file systems in network namespaces, each booted with systemd-nspawn and entered over its sshd,
 * test/support/systemd-target.ts; STATES_TARGET_KIND=chroot uses plain chrooted sshd targets without systemd and
 * drops the one service state) when everything is already converged.
 * rackseed runs its real state engine (facts, compile, SSH with pinned host keys, one connection per node, results
 * stored) with concurrency N; Ansible runs with forks N, pipelining on, host keys checked. Each side converges
 * first, then the no-op run is timed STATES_ROUNDS times (default 3) and the median is reported.
 *
 *   npm run bench:states          STATES_TARGETS=16 npm run bench:states
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../server/log.js';
import type { ResolvedNode } from '../server/model/inventory.js';
import { InventoryService } from '../server/services/inventory-service.js';
import { NodeIdentity } from '../server/services/node-identity.js';
import { StateService, type NodeRunReport } from '../server/services/state-service.js';
import { openStore } from '../server/store/index.js';
import { openSshTransport } from '../server/state/transport/ssh.js';
import { startSshTargets, type SshEndpoint } from '../test/support/ssh-target.js';
import { startSystemdTargets } from '../test/support/systemd-target.js';
import { envInt } from './lib/env.js';

const TARGETS = envInt('STATES_TARGETS', 8, 1, 64);
const ROUNDS = envInt('STATES_ROUNDS', 3, 1, 20);
const KIND = process.env.STATES_TARGET_KIND ?? 'systemd';
if (KIND !== 'systemd' && KIND !== 'chroot') throw new Error('STATES_TARGET_KIND must be systemd or chroot');
const WITH_SERVICE = KIND === 'systemd';
const SLS_DIR = path.resolve(import.meta.dirname, 'states/sls');
const PLAYBOOK = path.resolve(import.meta.dirname, 'states/ansible/playbook.yml');

const say = (line: string) => process.stdout.write(`${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function inventoryYaml(targets: SshEndpoint[]): string {
  const nodes = targets.map((t, i) => `  - name: ${t.name}\n    mac: 02:00:00:00:10:${(i + 1).toString(16).padStart(2, '0')}\n    ip: ${t.ip}\n    group: bench\n`);
  return `cluster:\n  name: bench\ngroups:\n  bench:\n    roles: [bench]\n    data: { bench_service: ${WITH_SERVICE} }\nnodes:\n${nodes.join('')}`;
}

async function rackseedRun(states: StateService, nodes: ResolvedNode[]): Promise<{ seconds: number; reports: NodeRunReport[] }> {
  const start = performance.now();
  const reports = await states.run(nodes, 'apply');
  return { seconds: (performance.now() - start) / 1000, reports };
}

async function ansibleRun(work: string, targets: SshEndpoint[]): Promise<{ seconds: number; changed: number; failed: number; output: string }> {
  const inventory = path.join(work, 'hosts.ini');
  writeFileSync(
    inventory,
    `[all]\n${targets.map((t) => `${t.name} ansible_host=${t.host} ansible_port=${t.port} ansible_user=root ansible_ssh_private_key_file=${t.privateKeyFile}`).join('\n')}\n`,
  );
  const knownHosts = path.join(work, 'known_hosts');
  writeFileSync(knownHosts, targets.map((t) => `[${t.host}]:${t.port} ${t.hostKeyLine}`).join('\n') + '\n');
  const start = performance.now();
  // Asynchronous on purpose: the targets' loopback relays live in this process and must keep forwarding.
  const child = spawn('ansible-playbook', ['-i', inventory, '-f', String(TARGETS), '-e', `bench_service=${WITH_SERVICE}`, PLAYBOOK], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ANSIBLE_HOME: path.join(work, 'ansible-home'),
      ANSIBLE_LOCAL_TEMP: path.join(work, 'ansible-tmp'),
      ANSIBLE_HOST_KEY_CHECKING: 'True',
      ANSIBLE_PIPELINING: 'True',
      ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
      ANSIBLE_SSH_ARGS: `-o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s`,
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_RETRY_FILES_ENABLED: 'False',
    },
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const seconds = (performance.now() - start) / 1000;
  let changed = 0;
  let failed = 0;
  for (const m of output.matchAll(/changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/g)) {
    changed += Number(m[1]);
    failed += Number(m[2]) + Number(m[3]);
  }
  if (status !== 0 && failed === 0) failed = 1;
  return { seconds, changed, failed, output };
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'rackseed-bench-states-'));
  const log = createLogger('warn');
  const fleet = KIND === 'systemd' ? await startSystemdTargets(TARGETS) : await startSshTargets(TARGETS);
  const store = await openStore({ kind: 'sqlite', path: path.join(work, 'rackseed.db') });
  try {
    await store.migrate();
    const inventoryFile = path.join(work, 'inventory.yaml');
    writeFileSync(inventoryFile, inventoryYaml(fleet.targets));
    const inventory = new InventoryService(inventoryFile, log);
    const byName = new Map(fleet.targets.map((t) => [t.name, t]));
    const states = new StateService({
      inventory,
      store,
      identity: new NodeIdentity(path.join(work, 'data')),
      settings: { roots: [SLS_DIR], pillarDir: path.join(work, 'pillar'), concurrency: TARGETS, commandTimeoutMs: 120_000, connectTimeoutMs: 10_000, sshPort: 22 },
      log,
      transportFor: async (node) => {
        const t = byName.get(node.name)!;
        return openSshTransport({ target: t.name, host: t.host, port: t.port, username: 'root', privateKey: t.privateKey, knownHostKey: t.hostKeyLine, connectTimeoutMs: 10_000 });
      },
    });
    const nodes = [...inventory.inventory.nodes.values()];

    say(`targets: ${TARGETS} ${KIND === 'systemd' ? 'systemd-nspawn containers' : 'chrooted sshd namespaces'}; converging with rackseed and with ansible first`);
    const converge = await rackseedRun(states, nodes);
    const stateCount = converge.reports[0]?.counts.total ?? 0;
    const broken = converge.reports.filter((r) => r.result === 'failed');
    if (broken.length > 0) throw new Error(`rackseed converge failed on ${broken.map((r) => `${r.node}: ${r.error?.message ?? r.states.filter((s) => s.result === false).map((s) => `${s.id}: ${s.comment}`).join('; ')}`).join(' | ')}`);
    const ansibleConverge = await ansibleRun(work, fleet.targets);
    if (ansibleConverge.failed > 0) throw new Error(`ansible converge failed:\n${ansibleConverge.output.slice(-4000)}`);

    const tRackseed: number[] = [];
    const tAnsible: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const rs = await rackseedRun(states, nodes);
      // A node rackseed never reached has no states at all (counts of 0): its few milliseconds are no measurement.
      const unreached = rs.reports.filter((r) => r.result === 'failed' || r.counts.total !== stateCount);
      if (unreached.length > 0) throw new Error(`rackseed's no-op run did not run every state on ${unreached.map((r) => `${r.node}: ${r.error?.message ?? `${r.counts.total} of ${stateCount} states`}`).join(' | ')}`);
      const changed = rs.reports.reduce((n, r) => n + r.counts.changed + r.counts.failed, 0);
      if (changed > 0) throw new Error(`rackseed's no-op run changed or failed ${changed} state(s): the role is not idempotent`);
      const an = await ansibleRun(work, fleet.targets);
      if (an.changed > 0 || an.failed > 0) throw new Error(`ansible's no-op run changed ${an.changed} / failed ${an.failed}:\n${an.output.slice(-4000)}`);
      tRackseed.push(rs.seconds);
      tAnsible.push(an.seconds);
      say(`round ${round}: rackseed ${rs.seconds.toFixed(2)} s, ansible ${an.seconds.toFixed(2)} s (${stateCount} states x ${TARGETS} targets, no changes on either side)`);
    }
    const x = median(tRackseed);
    const y = median(tAnsible);
    say(`median of ${ROUNDS}: rackseed ${x.toFixed(2)} s, ansible ${y.toFixed(2)} s, ansible/rackseed ${(y / x).toFixed(2)} (goal >= 5)`);
    say(JSON.stringify({ bench: 'states', targets: TARGETS, states: stateCount, t_rackseed_s: Number(x.toFixed(3)), t_ansible_s: Number(y.toFixed(3)), ansible_over_rackseed: Number((y / x).toFixed(2)) }));
  } finally {
    await store.close();
    await fleet.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:states failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
