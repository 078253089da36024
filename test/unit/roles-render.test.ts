/**
 * The built-in role library (states/) compiled with the real compiler over the real tree, for realistic nodes:
 * every role compiles, the generated files (slurm.conf, gres.conf, /etc/hosts, K3s config) say exactly what the
 * inventory and the facts say, and slurm.conf follows the cluster's membership.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInventory } from '../../server/inventory/index.js';
import type { LifecycleState } from '../../server/model/lifecycle.js';
import { compileForNode } from '../../server/state/compile/index.js';
import { buildRenderContext } from '../../server/state/context.js';
import { builtinModules, knownFunctions } from '../../server/state/modules/index.js';
import { composePillar, deepMerge } from '../../server/state/pillar.js';
import { renderTemplateText } from '../../server/state/render/render.js';
import { runPlan } from '../../server/state/run/runner.js';
import { FakeTransport } from '../../server/state/transport/fake.js';
import { FsSlsSource } from '../../server/state/source-fs.js';
import type { CompiledPlan, CompiledState, RenderContext } from '../../server/state/types.js';
import { statesFailureReason } from '../../server/services/convergence-classify.js';
import { k3sJoinWaitTarget } from '../../server/services/k3s-join-wait.js';
import { secretsForRoles } from '../../server/services/role-secrets.js';
import { FACTS, INVENTORY, RHEL_FACTS, SECRETS, STATES_DIR, contextFor, loadTestInventory } from '../fixtures/roles/cluster.js';

const source = new FsSlsSource([STATES_DIR]);
const registry = builtinModules();

function compile(context: RenderContext, sls?: string[]): CompiledPlan {
  return compileForNode({
    source,
    context,
    ...(sls ? { sls } : {}),
    knownFunctions: knownFunctions(),
    validateArgs: (decl) => registry.get(`${decl.module}.${decl.fun}`)?.validate?.(decl.args) ?? [],
  });
}

/** The state with this name (and module, where a package and its service share a name). */
function stateNamed(plan: CompiledPlan, name: string, module?: string): CompiledState {
  const state = plan.states.find((s) => s.name === name && (module === undefined || s.module === module));
  if (!state) throw new Error(`no state named ${name} in the plan (${plan.states.map((s) => s.name).join(', ')})`);
  return state;
}

/** The file a file.managed state would write, rendered as the runner would (source + template). */
function renderedFile(plan: CompiledPlan, context: RenderContext, path: string): string {
  const state = stateNamed(plan, path, 'file');
  expect(state.module).toBe('file');
  if (typeof state.args.contents === 'string') return state.args.contents;
  const ref = source.readFile(String(state.args.source));
  return state.args.template === 'nunjucks' ? renderTemplateText(ref.text, ref.file, context, source) : ref.text;
}

const inv = loadTestInventory();
const BOOTSTRAP = '/etc/rancher/k3s/config.yaml.d/10-rackseed-bootstrap.yaml';
const AGENT_JOIN = '/etc/rancher/k3s/config.yaml.d/10-rackseed-agent-join.yaml';
const golden = (name: string): string => readFileSync(new URL(`../fixtures/roles/${name}`, import.meta.url), 'utf8');

describe('role library: every role compiles', () => {
  const cases: Array<[string, string, Partial<typeof FACTS[string]>?]> = [
    ['Slurm controller and login node', 'head01'],
    ['H100 GPU node (nvidia, infiniband, slurm-compute)', 'gpu01'],
    ['CPU-only Slurm node', 'cpu01'],
    ['K3s server', 'k3s01'],
    ['K3s agent', 'k3s02'],
    ['RHEL-family GPU node', 'gpu01', RHEL_FACTS],
  ];
  it.each(cases)('%s', (_title, name, facts) => {
    const context = contextFor(inv, name, facts ? { facts } : {});
    const plan = compile(context);
    const slsNames = new Set(plan.states.map((s) => s.sls));
    const expected = { head01: ['base', 'slurm.common', 'slurm.controller'], gpu01: ['base', 'nvidia', 'infiniband', 'slurm.common', 'slurm.compute'], cpu01: ['base', 'slurm.common', 'slurm.compute'], k3s01: ['base', 'k3s.common', 'k3s.server'], k3s02: ['base', 'k3s.common', 'k3s.agent'] }[name]!;
    expect([...slsNames].sort()).toEqual([...expected].sort());
    // Every templated file renders for this node.
    for (const state of plan.states.filter((s) => s.args.template === 'nunjucks')) expect(renderedFile(plan, context, state.name).length).toBeGreaterThan(0);
  });

  it('the example inventory compiles for every node (the k3s role picks server or agent from k3s.role)', () => {
    const example = loadInventory('examples/inventory.yaml');
    for (const node of example.nodes.values()) {
      const pillar = deepMerge(composePillar(node, example.groups.get(node.group)), secretsForRoles(node.roles, SECRETS));
      const facts = { ...FACTS['gpu01']!, hostname: node.name, ...(node.group === 'gpu' ? RHEL_FACTS : {}) };
      const plan = compile(buildRenderContext(example, node, pillar, facts));
      expect(plan.states.length).toBeGreaterThan(10);
    }
    const k3s02 = example.nodes.get('k3s02')!;
    const plan = compile(buildRenderContext(example, k3s02, deepMerge(composePillar(k3s02, example.groups.get('k3s')), secretsForRoles(k3s02.roles, SECRETS)), FACTS['k3s02']!));
    expect(plan.states.map((s) => s.sls)).toContain('k3s.agent');
    expect(stateNamed(plan, 'k3s-agent', 'service').fun).toBe('running');
  });
});

describe('role library: package names per OS family and pinned versions', () => {
  it('Debian and RHEL nodes get their own package names, the driver pinned to the group version and held', () => {
    const debian = compile(contextFor(inv, 'gpu01'));
    const rhel = compile(contextFor(inv, 'gpu01', { facts: RHEL_FACTS }));
    const driver = (plan: CompiledPlan) => stateNamed(plan, 'nvidia-driver-packages').args;
    expect(driver(debian)).toEqual({ hold: true, pkgs: [{ 'nvidia-driver': '535.183.01*' }, { 'nvidia-smi': '535.183.01*' }, { 'nvidia-persistenced': '535.183.01*' }] });
    expect(driver(rhel)).toEqual({
      hold: true,
      pkgs: [{ 'nvidia-driver': '535.183.01*' }, { 'nvidia-driver-cuda': '535.183.01*' }, { 'nvidia-persistenced': '535.183.01*' }, { 'kmod-nvidia-latest-dkms': '535.183.01*' }],
    });
    // dnf holds versions through its versionlock plugin, which stock RHEL lacks: installed first, on RHEL only.
    const lock = stateNamed(rhel, 'python3-dnf-plugin-versionlock', 'pkg');
    expect(lock.index).toBeLessThan(stateNamed(rhel, 'nvidia-driver-packages').index);
    expect(stateNamed(rhel, 'nvidia-driver-packages').requisites.flatMap((r) => r.on)).toContain(lock.key);
    expect(debian.states.some((st) => st.name === 'python3-dnf-plugin-versionlock')).toBe(false);
    expect(stateNamed(debian, 'cuda-toolkit-12-2').fun).toBe('installed');
    expect(stateNamed(rhel, 'slurm-slurmd').fun).toBe('installed');
    expect(stateNamed(debian, 'slurmd', 'service').fun).toBe('running');
    expect(stateNamed(rhel, 'rdma-packages').args.pkgs).toContain('libibverbs-utils');
    expect(stateNamed(debian, 'rdma-packages').args.pkgs).toContain('ibverbs-utils');
    expect(stateNamed(debian, 'nvidia').module).toBe('kmod');
    expect(stateNamed(debian, 'nvidia-smi -pl 700').unless[0]).toMatch(/power\.limit/);
    expect(stateNamed(debian, 'nvidia-smi -c EXCLUSIVE_PROCESS').unless[0]).toMatch(/grep -qvx Exclusive_Process/);
  });

  it('a GPU node without a driver version in its data fails to compile, naming the key', () => {
    const bare = loadTestInventory(INVENTORY.replace('nvidia: { driver: "535.183.01", cuda: "12.2", power_limit: 700, compute_mode: EXCLUSIVE_PROCESS }', 'nvidia: { cuda: "12.2" }'));
    expect(() => compile(contextFor(bare, 'gpu01'))).toThrow(/nvidia:driver/);
  });

  it('InfiniBand: mlx5 modprobe file, ib_ipoib when IPoIB is on, and the NCCL environment from group data', () => {
    const context = contextFor(inv, 'gpu01');
    const plan = compile(context);
    expect(renderedFile(plan, context, '/etc/modprobe.d/mlx5.conf')).toBe('# Managed by rackseed (infiniband)\nsoftdep mlx5_core post: mlx5_ib\noptions mlx5_core log_num_mgm_entry_size=-1\n');
    expect(stateNamed(plan, 'ib_ipoib').args).toEqual({ persist: true });
    expect(renderedFile(plan, context, '/etc/nccl.conf')).toBe('# Managed by rackseed (infiniband: nccl)\nNCCL_IB_HCA=mlx5\nNCCL_IB_GID_INDEX=3\nNCCL_SOCKET_IFNAME=eth0\n');
    expect(renderedFile(plan, context, '/etc/profile.d/rackseed-nccl.sh')).toContain('export NCCL_SOCKET_IFNAME=eth0\n');
    const noIpoib = loadTestInventory(INVENTORY.replace('infiniband: { ipoib: true, ', 'infiniband: { '));
    expect(compile(contextFor(noIpoib, 'gpu01')).states.some((s) => s.name === 'ib_ipoib')).toBe(false);
  });
});

describe('role library: base', () => {
  it('/etc/hosts lists every node of the cluster with its domain name', () => {
    const context = contextFor(inv, 'k3s02');
    const hosts = renderedFile(compile(context), context, '/etc/hosts');
    const lines = hosts.split('\n').filter((l) => /^10\./.test(l));
    expect(lines).toEqual([...inv.nodes.values()].map((n) => `${n.ip}\t${n.name}.lab.example ${n.name}`));
    expect(hosts).toMatch(/^127\.0\.0\.1\tlocalhost$/m);
  });

  it('time sync by data (chrony with the given servers), admin keys in a marked block, memlock unlimited', () => {
    const context = contextFor(inv, 'head01');
    const plan = compile(context);
    expect(renderedFile(plan, context, '/etc/chrony/chrony.conf')).toContain('server ntp1.lab.example iburst\nserver 10.0.0.254 iburst\n');
    expect(stateNamed(plan, 'chrony', 'service').fun).toBe('running');
    expect(plan.states.some((s) => s.name === 'systemd-timesyncd')).toBe(false);
    const block = plan.states.find((s) => s.fun === 'blockreplace')!;
    expect(block.args).toMatchObject({ content: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHeadAdminKeyForTests alice@lab', append_if_not_found: true });
    expect(renderedFile(plan, context, '/etc/security/limits.d/90-rackseed-hpc.conf')).toMatch(/^\*\s+hard\s+memlock\s+unlimited$/m);
    expect(stateNamed(plan, 'vm.zone_reclaim_mode').args).toMatchObject({ value: 0, config: '/etc/sysctl.d/90-rackseed-hpc.conf' });
  });

  it('a node without time servers leaves time sync alone; the node exporter only where asked for', () => {
    const plan = compile(contextFor(inv, 'cpu01'));
    expect(plan.states.filter((s) => /chrony|timesyncd/.test(s.name))).toEqual([]);
    expect(plan.states.some((s) => s.name === 'prometheus-node-exporter')).toBe(false);
    expect(stateNamed(compile(contextFor(inv, 'gpu01')), 'prometheus-node-exporter', 'service').fun).toBe('running');
  });
});

describe('role library: Slurm', () => {
  const slurmConf = (context: RenderContext) => renderedFile(compile(context), context, '/etc/slurm/slurm.conf');

  it('slurm.conf for the cluster: NodeName lines from the facts, partitions from the groups (golden file)', () => {
    const context = contextFor(inv, 'head01');
    const text = slurmConf(context);
    expect(text).toBe(golden('slurm.conf'));
    expect(text.split('\n').filter((l) => l.startsWith('NodeName='))).toEqual([
      'NodeName=gpu01 NodeAddr=10.0.1.11 CPUs=224 RealMemory=2063891 Gres=gpu:h100:8 State=UNKNOWN',
      'NodeName=gpu02 NodeAddr=10.0.1.12 CPUs=224 RealMemory=2063870 Gres=gpu:h100:8 State=UNKNOWN',
      'NodeName=cpu01 NodeAddr=10.0.2.11 CPUs=128 RealMemory=515722 State=UNKNOWN',
    ]);
    expect(text.split('\n').filter((l) => l.startsWith('PartitionName='))).toEqual([
      'PartitionName=gpu Nodes=gpu01,gpu02 Default=YES MaxTime=INFINITE State=UP',
      'PartitionName=cpu Nodes=cpu01 MaxTime=INFINITE State=UP',
    ]);
  });

  it("a compute node's Slurm reboot program reboots, unless its pillar's slurm.reboot_command says what to run instead", () => {
    const context = contextFor(inv, 'cpu01');
    const script = stateNamed(compile(context), '/usr/local/sbin/rackseed-slurm-reboot');
    expect(script.args).toMatchObject({ mode: '0755', contents: expect.stringMatching(/^#!\/bin\/sh\n#[^\n]*\nexec systemctl reboot\n$/) });
    context.pillar['slurm'] = { reboot_command: 'ipmitool chassis bootdev pxe\nexec systemctl reboot' };
    // Every line of a multi-line command stays inside the YAML block.
    expect(stateNamed(compile(context), '/usr/local/sbin/rackseed-slurm-reboot').args.contents).toMatch(/\nipmitool chassis bootdev pxe\nexec systemctl reboot\n$/);
    // The controller runs no jobs: Slurm never reboots it for a reimage.
    expect(compile(contextFor(inv, 'head01')).states.some((s) => s.name === '/usr/local/sbin/rackseed-slurm-reboot')).toBe(false);
  });

  it('slurm.conf and gres.conf are the same on every Slurm node', () => {
    const nodes = ['head01', 'gpu01', 'gpu02', 'cpu01'];
    const confs = nodes.map((n) => {
      const context = contextFor(inv, n, n === 'gpu02' ? { facts: RHEL_FACTS } : {});
      const plan = compile(context);
      return [renderedFile(plan, context, '/etc/slurm/slurm.conf'), renderedFile(plan, context, '/etc/slurm/gres.conf')];
    });
    for (const c of confs) expect(c).toEqual(confs[0]);
  });

  it('gres.conf names each GPU node, its GPU type and device files', () => {
    const context = contextFor(inv, 'gpu01');
    expect(renderedFile(compile(context), context, '/etc/slurm/gres.conf')).toBe(golden('gres.conf'));
  });

  it('mixed and non-contiguous GPU models get a Gres entry per type and exact device lists', () => {
    const context = contextFor(inv, 'head01');
    const a100 = { model: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81920 };
    const rtx = { model: 'NVIDIA GeForce RTX 3090', memoryMiB: 24576 };
    context.cluster.nodes.find((n) => n.name === 'cpu01')!.facts = { cpus: 64, memoryMiB: 257_000, gpus: [a100, rtx, a100, a100] };
    const plan = compile(context);
    expect(renderedFile(plan, context, '/etc/slurm/slurm.conf')).toContain('NodeName=cpu01 NodeAddr=10.0.2.11 CPUs=64 RealMemory=257000 Gres=gpu:a100:3,gpu:rtx3090:1 State=UNKNOWN\n');
    const gres = renderedFile(plan, context, '/etc/slurm/gres.conf').split('\n').filter((l) => l.startsWith('NodeName=cpu01'));
    expect(gres).toEqual(['NodeName=cpu01 Name=gpu Type=a100 File=/dev/nvidia0,/dev/nvidia2,/dev/nvidia3', 'NodeName=cpu01 Name=gpu Type=rtx3090 File=/dev/nvidia1']);
  });

  it('a node leaving the slurm-compute role changes slurm.conf and the node list slurmctld restarts on', () => {
    const before = contextFor(inv, 'head01');
    const smaller = loadTestInventory(INVENTORY.replace('  cpu:\n    roles: [base, slurm-compute]', '  cpu:\n    roles: [base]'));
    const after = contextFor(smaller, 'head01');
    const [planBefore, planAfter] = [compile(before), compile(after)];
    const confAfter = renderedFile(planAfter, after, '/etc/slurm/slurm.conf');
    expect(confAfter).not.toBe(renderedFile(planBefore, before, '/etc/slurm/slurm.conf'));
    expect(confAfter).not.toMatch(/cpu01/);
    expect(confAfter.split('\n').filter((l) => l.startsWith('PartitionName='))).toEqual(['PartitionName=gpu Nodes=gpu01,gpu02 Default=YES MaxTime=INFINITE State=UP']);
    expect(renderedFile(planAfter, after, '/etc/slurm/rackseed-nodes')).not.toBe(renderedFile(planBefore, before, '/etc/slurm/rackseed-nodes'));
  });

  it('a node without facts yet gets a line without hardware, so slurm.conf never guesses', () => {
    const context = contextFor(inv, 'head01');
    delete context.cluster.nodes.find((n) => n.name === 'cpu01')!.facts;
    expect(slurmConf(context)).toContain("# cpu01: no facts collected yet, Slurm's defaults until its first state run\nNodeName=cpu01 NodeAddr=10.0.2.11 State=UNKNOWN\n");
  });

  it('the controller reconfigures on a slurm.conf change and restarts on a node list change; compute nodes restart slurmd', () => {
    const controller = compile(contextFor(inv, 'head01'));
    const reconfigure = stateNamed(controller, 'scontrol reconfigure');
    const keyOf = (plan: CompiledPlan, name: string) => stateNamed(plan, name).key;
    const on = (state: CompiledState, kind: string) => state.requisites.filter((r) => r.kind === kind).flatMap((r) => r.on);
    expect(on(reconfigure, 'onchanges')).toEqual([keyOf(controller, '/etc/slurm/slurm.conf'), keyOf(controller, '/etc/slurm/gres.conf')]);
    expect(on(stateNamed(controller, 'slurmctld', 'service'), 'watch')).toContain(keyOf(controller, '/etc/slurm/rackseed-nodes'));
    const compute = compile(contextFor(inv, 'gpu01'));
    expect(on(stateNamed(compute, 'slurmd', 'service'), 'watch')).toEqual(
      expect.arrayContaining([keyOf(compute, '/etc/slurm/slurm.conf'), keyOf(compute, '/etc/slurm/gres.conf'), compute.states.find((s) => s.id === 'munge-key')!.key]),
    );
  });

  it('on a GPU node slurmd starts after the NVIDIA device files exist and restarts when it failed (a boot race), and the state run loads the driver first', () => {
    const dropIn = '/etc/systemd/system/slurmd.service.d/10-rackseed-nvidia.conf';
    const on = (state: CompiledState, kind: string) => state.requisites.filter((r) => r.kind === kind).flatMap((r) => r.on);
    const context = contextFor(inv, 'gpu01');
    const gpu = compile(context);
    const unit = renderedFile(gpu, context, dropIn);
    expect(unit).toMatch(/^After=nvidia-persistenced\.service$/m);
    expect(unit).toMatch(/^ExecStartPre=-\/usr\/bin\/nvidia-smi -L$/m);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    const slurmd = stateNamed(gpu, 'slurmd', 'service');
    expect(on(slurmd, 'watch')).toContain(stateNamed(gpu, dropIn).key);
    expect(on(slurmd, 'require')).toContain(stateNamed(gpu, 'nvidia', 'kmod').key);
    // A node without the nvidia role gets neither, and loses the drop-in if it had the role before.
    const cpu = compile(contextFor(inv, 'cpu01'));
    expect(stateNamed(cpu, dropIn)).toMatchObject({ module: 'file', fun: 'absent' });
    expect(on(stateNamed(cpu, 'slurmd', 'service'), 'watch')).toContain(stateNamed(cpu, dropIn).key);
    expect(on(stateNamed(cpu, 'slurmd', 'service'), 'require').some((k) => k.startsWith('kmod_|-'))).toBe(false);
  });

  it('a role taken away: base stops and disables the daemons rackseed ran for it, where rackseed\'s configuration shows it did', () => {
    const gone = (name: string) =>
      compile(contextFor(inv, name))
        .states.filter((st) => st.id.startsWith('rackseed-role-gone-'))
        .map((st) => [st.name, st.fun, st.args['enable'], st.onlyif]);
    const slurmConf = ['grep -qs "^# Managed by rackseed" /etc/slurm/slurm.conf'];
    const k3sConf = ['grep -qs "^# Managed by rackseed" /etc/rancher/k3s/config.yaml'];
    expect(gone('cpu01')).toEqual([['slurmctld', 'dead', false, slurmConf], ['k3s', 'dead', false, k3sConf], ['k3s-agent', 'dead', false, k3sConf]]);
    expect(gone('head01')).toEqual([['slurmd', 'dead', false, slurmConf], ['k3s', 'dead', false, k3sConf], ['k3s-agent', 'dead', false, k3sConf]]);
    expect(gone('k3s01')).toEqual([['slurmd', 'dead', false, slurmConf], ['slurmctld', 'dead', false, slurmConf]]);
  });

  it('the munge key file state hides its content, and a Slurm node without the secret in its pillar fails to compile', () => {
    const plan = compile(contextFor(inv, 'gpu01'));
    expect(stateNamed(plan, '/etc/munge/munge.key.b64').args).toMatchObject({ contents: SECRETS.mungeKeyB64, mode: '0400', show_changes: false });
    const context = contextFor(inv, 'gpu01');
    delete context.pillar['secrets'];
    expect(() => compile(context)).toThrow(/secrets:munge_key_b64/);
  });
});

describe('role library: K3s', () => {
  it('the agent joins the first k3s-server node with the token, its labels (GPU nodes labelled) and taints', () => {
    const context = contextFor(inv, 'k3s02');
    const plan = compile(context);
    expect(renderedFile(plan, context, '/etc/rancher/k3s/config.yaml')).toBe(golden('k3s-agent-config.yaml'));
    const gpuAgent = contextFor(inv, 'k3s02', { facts: { gpus: FACTS['gpu01']!.gpus } });
    expect(renderedFile(compile(gpuAgent), gpuAgent, '/etc/rancher/k3s/config.yaml')).toContain(
      '- "nvidia.com/gpu.present=true"\n- "rackseed.io/gpu-model=h100"\n- "rackseed.io/gpu-count=8"\n',
    );
    expect(stateNamed(plan, '/etc/rancher/k3s/config.yaml').args).toMatchObject({ mode: '0600', show_changes: false });
    expect(renderedFile(plan, context, '/etc/systemd/system/k3s-agent.service')).toMatch(/^ExecStart=\/usr\/local\/bin\/k3s agent$/m);
    // The server it joins first: written once, beside config.yaml.
    expect(renderedFile(plan, context, AGENT_JOIN).replace(/^#.*\n/gm, '')).toBe('server: "https://10.0.3.1:6443"\n');
    // Given a server_url (a VIP), config.yaml names it and no written-once file may override it.
    const vip = loadTestInventory(INVENTORY.replace('        artifacts: /srv/artifacts/k3s\n        labels', '        artifacts: /srv/artifacts/k3s\n        server_url: "https://10.0.3.100:6443"\n        labels'));
    const vipContext = contextFor(vip, 'k3s02');
    const vipPlan = compile(vipContext);
    expect(renderedFile(vipPlan, vipContext, '/etc/rancher/k3s/config.yaml')).toMatch(/^server: "https:\/\/10\.0\.3\.100:6443"$/m);
    expect(stateNamed(vipPlan, AGENT_JOIN)).toMatchObject({ module: 'file', fun: 'absent' });
  });

  it('a node racked before its server: the join waits for the server to answer, starts the unit without blocking and fails saying so (run by /bin/sh against a real loopback port)', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'rackseed-k3s-join-'));
    // systemctl stands in (no systemd here): it records what it was asked and says the unit is not active.
    writeFileSync(path.join(work, 'systemctl'), `#!/bin/sh\necho "$*" >> ${work}/systemctl.log\n[ "$1" = is-active ] && exit 3\nexit 0\n`, { mode: 0o755 });
    const listener = createServer();
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as AddressInfo).port;
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const sh = (command: string) =>
      new Promise<{ code: number; stderr: string }>((resolve) => {
        execFile('/bin/sh', ['-c', command], { env: { ...process.env, PATH: `${work}:${process.env['PATH'] ?? ''}` } }, (err, _stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr }));
      });
    const joinFor = (url: string) => {
      const given = loadTestInventory(INVENTORY.replace('        artifacts: /srv/artifacts/k3s\n        labels', `        artifacts: /srv/artifacts/k3s\n        server_url: "${url}"\n        labels`));
      const plan = compile(contextFor(given, 'k3s02'));
      return { plan, join: plan.states.find((st) => st.id === 'k3s-join-server')! };
    };
    try {
      const { plan, join } = joinFor(`https://127.0.0.1:${closedPort}`);
      // k3s-agent starts only once the server answers; the wait covers a server converging alongside (5 minutes).
      expect(stateNamed(plan, 'k3s-agent', 'service').requisites.filter((r) => r.kind === 'require').flatMap((r) => r.on)).toContain(join.key);
      expect(join.retry).toMatchObject({ attempts: 30, interval: 10 });
      // Nobody listens: the unit is enabled and started without waiting (K3s keeps trying to join by itself), and the
      // state fails with the reason, as its last line on stderr.
      expect((await sh(join.unless[0]!)).code).not.toBe(0);
      const waiting = await sh(join.name);
      expect(waiting.code).toBe(1);
      const said = waiting.stderr.trim().split('\n').pop()!;
      expect(said).toBe(
        `K3s server 127.0.0.1:${closedPort} does not answer yet: k3s-agent is started and keeps trying to join by itself; rackseed converges this node again once 127.0.0.1:${closedPort} answers its probe`,
      );
      // The rackseed server reads the address back out of the node's reason, to probe it (k3s-join-wait.ts).
      const reason = statesFailureReason({ node: 'k3s02', runId: 'r', mode: 'apply', result: 'failed', counts: { changed: 0, unchanged: 0, failed: 1, wouldChange: 0, total: 1 }, durationMs: 1, states: [{ key: join.key, id: join.id, name: join.name, sls: join.sls, module: 'cmd', fun: 'run', result: false, changes: { retcode: waiting.code, stdout: '', stderr: waiting.stderr }, comment: 'Command failed', durationMs: 1, startedAt: 0, runNum: 1 }] });
      expect(k3sJoinWaitTarget(reason)).toEqual({ host: '127.0.0.1', port: closedPort });
      expect(readFileSync(path.join(work, 'systemctl.log'), 'utf8')).toBe('daemon-reload\nenable -q -- k3s-agent\nis-active -q -- k3s-agent\nstart --no-block -- k3s-agent\n');
      // What this run changed reaches the unit even so: restarted (without blocking) when the wait failed.
      const restart = stateNamed(plan, 'systemctl daemon-reload && systemctl restart --no-block -- k3s-agent', 'cmd');
      expect(restart.requisites.filter((r) => r.kind === 'onfail').flatMap((r) => r.on)).toEqual([join.key]);
      rmSync(path.join(work, 'systemctl.log'));
      expect((await sh(restart.name)).code).toBe(0);
      expect(readFileSync(path.join(work, 'systemctl.log'), 'utf8')).toBe('daemon-reload\nrestart --no-block -- k3s-agent\n');
      // The server answers: the guard passes and nothing more is done (k3s-service then starts the unit).
      expect((await sh(joinFor(`https://127.0.0.1:${port}`).join.unless[0]!)).code).toBe(0);
      expect((await sh(joinFor(`https://127.0.0.1:${port}/`).join.unless[0]!)).code).toBe(0);
    } finally {
      await new Promise<void>((resolve) => listener.close(() => resolve()));
      rmSync(work, { recursive: true, force: true });
    }
    // The server that starts the cluster waits for nobody; nor does a node whose K3s is not started here.
    expect(compile(contextFor(inv, 'k3s01')).states.some((st) => st.id === 'k3s-join-server')).toBe(false);
    expect(compile(contextFor(inv, 'k3s02')).states.find((st) => st.id === 'k3s-join-server')!.unless[0]).toContain("hp=10.0.3.1:6443;");
    const notStarted = loadTestInventory(INVENTORY.replace('artifacts: /srv/artifacts/k3s', 'artifacts: /srv/artifacts/k3s\n        start: false'));
    expect(compile(contextFor(notStarted, 'k3s02')).states.some((st) => st.id === 'k3s-join-server')).toBe(false);
  });

  it('what a run changed reaches a running unit although the server it joins does not answer (the real plan through the runner, twice)', async () => {
    const context = contextFor(inv, 'k3s02');
    const plan = compile(context, ['k3s.agent']);
    let serverAnswers = false;
    // The node: k3s-agent is running (with the old config.yaml); the binary is in place; the server is down or up.
    const transport = new FakeTransport('k3s02', {
      files: { '/etc/rancher/k3s/config.yaml': 'token: "old"\n' },
      handler: (command) => {
        const sections = [...command.matchAll(/__rackseed_section__ %s %s\\n' (\S+) "\$\?"/g)].map((m) => m[1]!);
        if (sections.length > 0) return { code: 0, stdout: sections.map((sec) => `\n__rackseed_section__ ${sec} 1\n`).join(''), stderr: '' };
        if (command.includes('does not answer yet')) return { code: 1, stdout: '', stderr: 'K3s server 10.0.3.1:6443 does not answer yet: k3s-agent is started\n' };
        if (command.includes('/dev/tcp/')) return { code: serverAnswers ? 0 : 1, stdout: '', stderr: '' };
        if (command.includes("printf 'active=%s")) {
          const agent = /is-active -- '?k3s-agent'? /.test(command);
          return { code: 0, stdout: agent ? 'active=active\nenabled=enabled\nreload=no\n' : 'active=inactive\nenabled=not-found\nreload=no\n', stderr: '' };
        }
        return undefined;
      },
    });
    const run = async () => {
      const from = transport.commands.length;
      const { results } = await runPlan(plan, {
        registry,
        context: { transport, facts: context.facts, timeoutMs: 10_000, renderTemplate: (text, file) => renderTemplateText(text, file, context, source), readSource: async (ref) => source.readFile(ref) },
        options: { test: false },
        now: () => 0,
        sleep: async () => undefined,
      });
      const restarts = transport.commands.slice(from).filter((c) => c.includes('systemctl restart'));
      return { byId: Object.fromEntries(results.map((r) => [r.id, r])), restarts };
    };

    // Run 1 writes a new config.yaml; the wait fails, so k3s-service (and its watch restart) does not run: the unit
    // is restarted anyway, without blocking. Before, it kept running with the old configuration.
    const first = await run();
    expect(first.byId['/etc/rancher/k3s/config.yaml']!.changes).not.toEqual({});
    expect(first.byId['k3s-join-server']!.result).toBe(false);
    expect(first.byId['k3s-service']!.comment).toMatch(/^One or more requisite failed/);
    expect(first.restarts).toHaveLength(1);
    expect(first.restarts[0]).toContain('systemctl restart --no-block -- k3s-agent');
    expect(first.byId['k3s-restart-unjoined']!.result).toBe(true);
    // Run 2 finds everything in sync: the running unit (restarted in run 1) is left alone while it keeps trying.
    const second = await run();
    expect(second.byId['k3s-join-server']!.result).toBe(false);
    expect(second.byId['k3s-restart-unjoined']).toMatchObject({ result: true, changes: {} });
    expect(second.restarts).toEqual([]);
    // The server answers, and a change is restarted by k3s-service's watch as always: nothing here.
    serverAnswers = true;
    transport.files.set('/etc/rancher/k3s/config.yaml', { data: Buffer.from('token: "edited"\n'), options: {} });
    const third = await run();
    expect(third.byId['k3s-join-server']).toMatchObject({ result: true, changes: {} });
    expect(third.byId['k3s-restart-unjoined']).toMatchObject({ result: true, changes: {} });
    expect(third.byId['k3s-service']).toMatchObject({ result: true, changes: { 'k3s-agent': true } });
    expect(third.restarts).toHaveLength(1);
    expect(third.restarts[0]).toMatch(/systemctl restart -- '?k3s-agent'?/);
  });

  it('the server config has no join address, names itself in tls-san and disables what the data says', () => {
    const context = contextFor(inv, 'k3s01');
    const plan = compile(context);
    const config = renderedFile(plan, context, '/etc/rancher/k3s/config.yaml');
    expect(config).not.toMatch(/^server:/m);
    expect(config).toContain('tls-san:\n- "k3s01"\n- "k3s01.lab.example"\n- "10.0.3.1"\ndisable:\n- "traefik"\n');
    expect(renderedFile(plan, context, '/etc/systemd/system/k3s.service')).toMatch(/^Type=notify$/m);
  });

  it('several servers: the first starts the cluster (embedded etcd, written once) and the others join it; a server_url in front of them (a VIP) changes where they join, not who starts it', () => {
    const text = INVENTORY.replace('  - { name: k3s02,', '  - { name: k3s03, mac: "52:54:00:00:03:03", ip: 10.0.3.3, group: k3sctl }\n  - { name: k3s02,');
    const ctxOf = (invText: string, name: string, states: Record<string, LifecycleState> = {}) =>
      contextFor(loadTestInventory(invText), name, { states, ...(name === 'k3s03' ? { facts: { ...FACTS['k3s01']!, hostname: 'k3s03' } } : {}) });
    const file = (invText: string, name: string, path: string, states: Record<string, LifecycleState> = {}) => {
      const ctx = ctxOf(invText, name, states);
      return renderedFile(compile(ctx), ctx, path);
    };
    const bootstrap = (invText: string, name: string, states: Record<string, LifecycleState> = {}) =>
      file(invText, name, BOOTSTRAP, states).replace(/^#.*\n/gm, '');
    expect(bootstrap(text, 'k3s01')).toBe('cluster-init: true\n');
    expect(bootstrap(text, 'k3s03')).toBe('server: "https://10.0.3.1:6443"\n');
    // The join decision is not in config.yaml, which follows every change: a server started once keeps how it started.
    for (const name of ['k3s01', 'k3s03']) expect(file(text, name, '/etc/rancher/k3s/config.yaml')).not.toMatch(/^(server|cluster-init):/m);
    const drop = stateNamed(compile(ctxOf(text, 'k3s03')), BOOTSTRAP);
    expect(drop.args).toMatchObject({ replace: false, mode: '0600', makedirs: true });
    const service = stateNamed(compile(ctxOf(text, 'k3s03')), 'k3s', 'service');
    expect(service.requisites.filter((r) => r.kind === 'watch').flatMap((r) => r.on)).toContain(drop.key);
    // Its unit is started only with the drop-in in place, also by the wait's fallback (the server it joins down):
    // started without it, a joining server would start a cluster of its own.
    const requires = (plan: CompiledPlan, id: string) => plan.states.find((st) => st.id === id)!.requisites.filter((r) => r.kind === 'require').flatMap((r) => r.on);
    for (const id of ['k3s-join-server', 'k3s-restart-unjoined']) expect(requires(compile(ctxOf(text, 'k3s03')), id), id).toContain(drop.key);
    // Before: every server, the first too, was told to join the VIP, and no server started the cluster.
    const vip = text.replace('k3s: { disable: [traefik] }', 'k3s: { disable: [traefik], server_url: "https://10.0.3.100:6443" }');
    expect(bootstrap(vip, 'k3s01')).toBe('cluster-init: true\n');
    expect(file(vip, 'k3s01', '/etc/rancher/k3s/config.yaml')).toContain('tls-san:\n- "10.0.3.100"\n- "k3s01"\n');
    expect(bootstrap(vip, 'k3s03')).toBe('server: "https://10.0.3.100:6443"\n');
    // A node that joins another retries its start (convergence has no order between nodes); the first does not.
    const retryOf = (invText: string, name: string) => compile(ctxOf(invText, name)).states.find((st) => st.id === 'k3s-service')!.retry?.attempts;
    expect([retryOf(text, 'k3s01'), retryOf(text, 'k3s03'), retryOf(text, 'k3s02')]).toEqual([undefined, 30, 30]);
    // A cluster started elsewhere: every server joins it.
    const external = vip.replace('server_url: "https://10.0.3.100:6443"', 'server_url: "https://10.0.3.100:6443", join_existing: true');
    expect(bootstrap(external, 'k3s01')).toBe('server: "https://10.0.3.100:6443"\n');
  });

  it('a node that switches between agent and server stops, disables and removes the other role\'s unit (two kubelets otherwise); an agent drops the server\'s join file', () => {
    const plans = { server: compile(contextFor(inv, 'k3s01')), agent: compile(contextFor(inv, 'k3s02')) };
    const dead = (plan: CompiledPlan) => plan.states.filter((st) => st.module === 'service' && st.fun === 'dead' && st.sls.startsWith('k3s')).map((st) => [st.name, st.args['enable']]);
    const absent = (plan: CompiledPlan) => plan.states.filter((st) => st.module === 'file' && st.fun === 'absent').map((st) => st.name);
    expect(dead(plans.server)).toEqual([['k3s-agent', false]]);
    expect(absent(plans.server)).toEqual(['/etc/systemd/system/k3s-agent.service', AGENT_JOIN]);
    expect(dead(plans.agent)).toEqual([['k3s', false]]);
    expect(absent(plans.agent)).toEqual(['/etc/systemd/system/k3s.service', BOOTSTRAP]);
    // The role's own service starts only once the other one is stopped.
    const own = stateNamed(plans.agent, 'k3s-agent', 'service');
    expect(own.requisites.filter((r) => r.kind === 'require').flatMap((r) => r.on)).toContain(plans.agent.states.find((st) => st.id === 'k3s-other-role')!.key);
  });

  it('servers of the plain k3s role (k3s.role: server) count as servers: one starts the cluster, the next joins it, agents find it', () => {
    const text = INVENTORY.replace('  k3sctl:\n    roles: [base, k3s-server]', '  k3sctl:\n    roles: [base, k3s]').replace('k3s: { disable: [traefik] }', 'k3s: { disable: [traefik], role: server }').replace(
      '  - { name: k3s02,',
      '  - { name: k3s03, mac: "52:54:00:00:03:03", ip: 10.0.3.3, group: k3sctl }\n  - { name: k3s02,',
    );
    const k3sInv = loadTestInventory(text);
    const render = (name: string, path: string) => {
      const ctx = contextFor(k3sInv, name, name === 'k3s03' ? { facts: { ...FACTS['k3s01']!, hostname: 'k3s03' } } : {});
      return renderedFile(compile(ctx), ctx, path).replace(/^#.*\n/gm, '');
    };
    // Before: both k3s01 and k3s03 started a cluster of their own, and the agent found no server at all.
    expect(render('k3s01', BOOTSTRAP)).toBe('cluster-init: true\n');
    expect(render('k3s03', BOOTSTRAP)).toBe('server: "https://10.0.3.1:6443"\n');
    expect(render('k3s02', AGENT_JOIN)).toBe('server: "https://10.0.3.1:6443"\n');
  });

  it('k3s.join_existing without k3s.server_url fails to compile, naming the key (the first server was told to join itself)', () => {
    const text = INVENTORY.replace('k3s: { disable: [traefik] }', 'k3s: { disable: [traefik], join_existing: true }');
    expect(() => compile(contextFor(loadTestInventory(text), 'k3s01'))).toThrow(/k3s:server_url \(required with k3s\.join_existing/);
  });

  it('a lone server also starts with embedded etcd, so a second server can join it later without touching it', () => {
    expect(file(INVENTORY, 'k3s01')).toBe('cluster-init: true\n');
    function file(invText: string, name: string) {
      const ctx = contextFor(loadTestInventory(invText), name);
      return renderedFile(compile(ctx), ctx, BOOTSTRAP).replace(/^#.*\n/gm, '');
    }
  });

  it('a server that is ready in the store is the one to join: a server added above it in the inventory, or the first server being reimaged, joins the running cluster instead of starting a second one', () => {
    // k3s00 is added above the running k3s01 (ready); then k3s01 is reimaged while k3s00 and k3s03 run.
    const text = INVENTORY.replace('  - { name: k3s01,', '  - { name: k3s00, mac: "52:54:00:00:03:00", ip: 10.0.3.100, group: k3sctl }\n  - { name: k3s01,').replace(
      '  - { name: k3s02,',
      '  - { name: k3s03, mac: "52:54:00:00:03:03", ip: 10.0.3.3, group: k3sctl }\n  - { name: k3s02,',
    );
    const inv3 = loadTestInventory(text);
    const render = (name: string, path: string, states: Record<string, LifecycleState | { state: LifecycleState; stage?: string }>) => {
      const ctx = contextFor(inv3, name, { states, ...(name !== 'k3s01' && name !== 'k3s02' ? { facts: { ...FACTS['k3s01']!, hostname: name } } : {}) });
      return renderedFile(compile(ctx), ctx, path).replace(/^#.*\n/gm, '');
    };
    const added = { k3s00: 'configuring', k3s01: 'ready', k3s03: 'ready', k3s02: 'ready' } as const;
    expect(render('k3s00', BOOTSTRAP, added)).toBe('server: "https://10.0.3.1:6443"\n');
    expect(render('k3s02', AGENT_JOIN, added)).toBe('server: "https://10.0.3.1:6443"\n');
    const reimaged = { k3s00: 'ready', k3s01: 'configuring', k3s03: 'ready', k3s02: 'ready' } as const;
    expect(render('k3s01', BOOTSTRAP, reimaged)).toBe('server: "https://10.0.3.100:6443"\n');
    // A new agent joins a server that runs; one that has joined keeps its file (written once: K3s knows every server
    // by now), and its config.yaml, which follows every change, does not name a server at all, so nothing restarts it.
    expect(render('k3s02', AGENT_JOIN, reimaged)).toBe('server: "https://10.0.3.100:6443"\n');
    expect(render('k3s02', '/etc/rancher/k3s/config.yaml', reimaged)).toBe(render('k3s02', '/etc/rancher/k3s/config.yaml', added));
    const ctx = contextFor(inv3, 'k3s02', { states: reimaged });
    expect(stateNamed(compile(ctx), AGENT_JOIN).args).toMatchObject({ replace: false, mode: '0600', makedirs: true });
    // The servers still running failed readiness (a cordon): the reimaged k3s01 still joins them.
    const failedAfter = { k3s00: { state: 'failed', stage: 'readiness' }, k3s01: 'configuring', k3s03: { state: 'failed', stage: 'readiness' } } as const;
    expect(render('k3s01', BOOTSTRAP, failedAfter)).toBe('server: "https://10.0.3.100:6443"\n');
    // One that failed in its states may never have started K3s: two new servers must not each join the other. k3s00's
    // states failed (its binary was missing): k3s01 starts the cluster, and k3s00, fixed, joins it.
    expect(render('k3s01', BOOTSTRAP, { k3s00: { state: 'failed', stage: 'states' }, k3s01: 'configuring' })).toBe('cluster-init: true\n');
    expect(render('k3s00', BOOTSTRAP, { k3s00: 'configuring', k3s01: 'ready' })).toBe('server: "https://10.0.3.1:6443"\n');
    // A server whose install failed runs nothing.
    expect(render('k3s01', BOOTSTRAP, { k3s00: { state: 'failed', stage: 'download' }, k3s01: 'configuring' })).toBe('cluster-init: true\n');
    // A new cluster (no server ready yet): the first in the inventory starts it.
    expect(render('k3s00', BOOTSTRAP, {})).toBe('cluster-init: true\n');
    expect(render('k3s01', BOOTSTRAP, { k3s00: 'configuring', k3s01: 'configuring' })).toBe('server: "https://10.0.3.100:6443"\n');
  });

  it('after each (re)start the node is waited for until Ready, so readiness does not meet a node still registering', () => {
    for (const name of ['k3s01', 'k3s02']) {
      const plan = compile(contextFor(inv, name));
      const wait = plan.states.find((st) => st.id === 'k3s-node-ready')!;
      expect(wait.name).toContain(`get node ${name} -o jsonpath=`);
      expect(wait.requisites.find((r) => r.kind === 'onchanges')?.on).toEqual([stateNamed(plan, name === 'k3s01' ? 'k3s' : 'k3s-agent', 'service').key]);
    }
    const notStarted = loadTestInventory(INVENTORY.replace('artifacts: /srv/artifacts/k3s', 'artifacts: /srv/artifacts/k3s\n        start: false'));
    expect(compile(contextFor(notStarted, 'k3s02')).states.some((st) => st.id === 'k3s-node-ready')).toBe(false);
  });

  it('never downloads: the binary comes from the artefact directory, checked against k3s.sha256 when given', () => {
    const plan = compile(contextFor(inv, 'k3s02'));
    const everyCommand = plan.states.flatMap((s) => [s.module === 'cmd' ? s.name : '', ...s.unless, ...s.onlyif]).join('\n');
    expect(everyCommand).not.toMatch(/curl|wget|https?:\/\/|get\.k3s\.io/);
    const binary = plan.states.find((s) => s.id === 'k3s-binary')!;
    expect(binary.module).toBe('cmd');
    expect(binary.name).toContain('install -m 0755 -o root -g root /srv/artifacts/k3s/k3s /usr/local/bin/k3s');
    const pinned = loadTestInventory(INVENTORY.replace('artifacts: /srv/artifacts/k3s', `artifacts: /srv/artifacts/k3s\n        sha256: ${'ab'.repeat(32)}`));
    expect(compile(contextFor(pinned, 'k3s02')).states.find((s) => s.id === 'k3s-binary')!.name).toContain(`echo '${'ab'.repeat(32)}  /srv/artifacts/k3s/k3s' | sha256sum -c --quiet -`);
  });

  it('an agent with no server to join fails to compile, saying what to set', () => {
    const noServer = loadTestInventory(INVENTORY.replace('roles: [base, k3s-server]', 'roles: [base]'));
    const context = contextFor(noServer, 'k3s02');
    const plan = compile(context);
    expect(() => renderedFile(plan, context, '/etc/rancher/k3s/config.yaml')).toThrow(/k3s:server_url/);
  });
});
