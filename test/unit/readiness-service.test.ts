import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path, { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';
import { runtimeRegistry } from '../../server/metrics/runtime-metrics.js';
import { RackseedError } from '../../server/model/errors.js';
import type { LifecycleEvent } from '../../server/model/lifecycle.js';
import type { Evidence } from '../../server/readiness/types.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { ReadinessService, type NodeReadinessReport } from '../../server/services/readiness-service.js';
import type { ObservedStore } from '../../server/store/index.js';
import { FakeTransport } from '../../server/state/transport/fake.js';
import type { ExecResult } from '../../server/state/types.js';
import { fixture, sysfsDump } from '../fixtures/readiness/load.js';
import { workdirWithStore } from '../support/workdir.js';

const INVENTORY = `
cluster: { name: demo, domain: cluster.local }
groups:
  head:
    roles: [base, slurm-controller]
  gpu:
    roles: [base, slurm-compute, nvidia]
    hardware:
      gpu: { model: H100, count: 8, memory_mib: 81559 }
      infiniband: { ports: 8, rate_gbps: 400 }
nodes:
  - { name: head01, mac: "52:54:00:00:00:01", ip: 10.0.0.1, group: head }
  - { name: gpu01, mac: "52:54:00:00:01:01", ip: 10.0.1.11, group: gpu }
`;

/** FACTS_SCRIPT-shaped answer for a fake Ubuntu 22.04 GPU node (built here, not recorded). */
const FACTS_OUTPUT = [
  '@@rackseed-facts os-release@@',
  'ID=ubuntu',
  'VERSION_ID="22.04"',
  '@@rackseed-facts uname@@',
  '5.15.0-105-generic',
  'x86_64',
  '@@rackseed-facts hostname@@',
  'gpu01',
  '@@rackseed-facts nproc@@',
  '96',
  '@@rackseed-facts end@@',
  '',
].join('\n');

const HOSTS = '127.0.0.1 localhost\n10.0.0.1 head01.cluster.local head01\n10.0.1.11 gpu01.cluster.local gpu01\n';

function out(stdout: string, code = 0, stderr = ''): ExecResult {
  return { code, stdout, stderr };
}

/** A healthy 8x H100 node answering from the recorded fixtures; `slurmState` decides what the controller says. */
function gpuNode(slurm: { state: string; reason?: string }): FakeTransport {
  return new FakeTransport('gpu01', {
    handler: (command) => {
      if (command.includes('@@rackseed-facts')) return out(FACTS_OUTPUT);
      if (command === 'uname -n') return out('gpu01\n');
      if (command === 'cat /etc/hosts') return out(HOSTS);
      if (command.includes('nvidia-smi -q -x')) return out(`${fixture('nvidia-smi/gpud-h100-80gb-hbm3-x8-535.161.08-q.txt')}@@rackseed compute_cap@@\n`);
      if (command.includes('dmesg')) return out('@@rackseed kernel-log ok@@\n');
      if (command.includes('/sys/class/infiniband')) return out(sysfsDump('infiniband/gpud-sys-class-infiniband-h100'));
      if (command.startsWith("scontrol show node 'gpu01'")) {
        return out(`NodeName=gpu01 Arch=x86_64 CoresPerSocket=1\n   State=${slurm.state} ThreadsPerCore=1\n${slurm.reason ? `   Reason=${slurm.reason}\n` : ''}`);
      }
      return out('', 127, `unexpected command in test: ${command}`);
    },
  });
}

const TO_INSTALLED: LifecycleEvent[] = [{ type: 'assigned', group: 'gpu' }, { type: 'provision_started' }, { type: 'installed' }];
/** Where convergence leaves a node when its states are applied and readiness is next. */
const TO_CONFIGURING: LifecycleEvent[] = [...TO_INSTALLED, { type: 'configure_started' }];

describe('ReadinessService (FakeTransport + SQLite store)', () => {
  let dir: string;
  let store: ObservedStore;
  let inventory: InventoryService;
  const log = createLogger('silent');

  beforeEach(async () => {
    ({ dir, store } = await workdirWithStore('rackseed-readiness-', { 'inventory.yaml': INVENTORY }));
    inventory = new InventoryService(join(dir, 'inventory.yaml'), log);
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const settings = { concurrency: 4, commandTimeoutMs: 5_000, connectTimeoutMs: 1_000, sshPort: 22 };
  const node = (name: string) => inventory.inventory.nodes.get(name)!;

  async function bring(name: string, events: LifecycleEvent[]): Promise<void> {
    for (const event of events) expect((await store.recordEvent({ node: name, event })).ok).toBe(true);
  }

  async function eventTypes(name: string): Promise<string[]> {
    return (await store.listEvents({ node: name })).map((e) => e.event.type);
  }

  it('an installed node whose checks all pass goes configuring -> ready, with the evidence stored in a readiness run', async () => {
    await bring('gpu01', TO_CONFIGURING);
    const transport = gpuNode({ state: 'IDLE' });
    const service = new ReadinessService({ inventory, store, settings, log, transportFor: async () => transport });
    const streamed: string[] = [];
    // As the convergence runs it, once the node's states are applied.
    const [report] = await service.run([node('gpu01')], (r) => streamed.push(r.node), { byConvergence: true });

    expect(streamed).toEqual(['gpu01']);
    expect(report).toMatchObject({ node: 'gpu01', ready: true, state: 'ready', failing: [], summary: '' });
    expect(report?.evidence.filter((e) => !e.pass)).toEqual([]);
    expect(report?.evidence.map((e) => e.check)).toEqual([
      'base.ssh',
      'base.hostname',
      'base.hosts',
      'slurm.node_state',
      'nvidia.gpu_count',
      'nvidia.gpu_model',
      'nvidia.driver',
      'nvidia.cuda',
      'nvidia.kernel',
      'nvidia.compute_capability',
      'nvidia.memory',
      'nvidia.memory_errors',
      'nvidia.xid',
      'infiniband.ports',
    ]);
    expect(await eventTypes('gpu01')).toEqual(['assigned', 'provision_started', 'installed', 'configure_started', 'ready']);
    expect((await store.getNode('gpu01'))?.state).toBe('ready');

    const runs = await store.listRuns({ node: 'gpu01', kind: 'readiness' });
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ id: report?.runId, kind: 'readiness', result: 'success', summary: { ready: true, failing: [], checks: 14, failed: 0 } });
    expect((runs[0]?.details as Evidence[]).find((e) => e.check === 'nvidia.gpu_count')).toEqual({ check: 'nvidia.gpu_count', role: 'nvidia', expected: '8', seen: '8', pass: true });
    // One exec per check plus the facts, and the connection closed.
    expect(transport.commands).toHaveLength(7);
    expect(transport.calls.at(-1)).toEqual({ op: 'close' });
  });

  it('a drained node fails with the Slurm reason, is counted in metrics, and a later passing run takes it back to ready', async () => {
    await bring('gpu01', TO_CONFIGURING);
    let transport = gpuNode({ state: 'IDLE+DRAIN', reason: 'GPU 3 fell off the bus [root@2025-03-01T10:00:00]' });
    const service = new ReadinessService({ inventory, store, settings, log, transportFor: async () => transport });
    const before = (await runtimeRegistry.getSingleMetric('rackseed_readiness_failures_total')?.get())?.values.find((v) => v.labels.check === 'slurm.node_state')?.value ?? 0;

    const [failed] = await service.run([node('gpu01')], undefined, { byConvergence: true });
    expect(failed).toMatchObject({ ready: false, state: 'failed', failing: ['slurm.node_state'] });
    const status = await store.getNode('gpu01');
    expect(status).toMatchObject({ state: 'failed', stage: 'readiness' });
    expect(status?.reason).toBe('readiness: slurm.node_state (Slurm reports gpu01 idle with drain: Reason=GPU 3 fell off the bus [root@2025-03-01T10:00:00])');
    const [run] = await store.listRuns({ node: 'gpu01', kind: 'readiness' });
    expect(run).toMatchObject({ result: 'failed', summary: { ready: false, failing: ['slurm.node_state'] } });
    expect((run?.details as Evidence[]).find((e) => !e.pass)).toMatchObject({ check: 'slurm.node_state', seen: 'IDLE+DRAIN' });
    const after = (await runtimeRegistry.getSingleMetric('rackseed_readiness_failures_total')?.get())?.values.find((v) => v.labels.check === 'slurm.node_state')?.value;
    expect(after).toBe(before + 1);

    // The operator resumes the node; readiness is retried: failed -> configuring -> ready.
    transport = gpuNode({ state: 'IDLE' });
    const [retried] = await service.run([node('gpu01')]);
    expect(retried).toMatchObject({ ready: true, state: 'ready' });
    expect(await eventTypes('gpu01')).toEqual(['assigned', 'provision_started', 'installed', 'configure_started', 'failed', 'configure_started', 'ready']);
    expect((await service.last([node('gpu01')]))[0]).toMatchObject({ node: 'gpu01', state: 'ready', run: { id: retried?.runId, ready: true, failing: [] } });
  });

  it('leaves an installed node (states never applied) and one whose states failed as they are, even when every check passes', async () => {
    const service = new ReadinessService({ inventory, store, settings, log, transportFor: async () => gpuNode({ state: 'IDLE' }) });
    await bring('gpu01', TO_INSTALLED);
    const [installed] = await service.run([node('gpu01')]);
    expect(installed).toMatchObject({ ready: true, state: 'installed' });
    expect(installed?.lifecycleNote).toMatch(/^node is installed and its states are not applied yet: .*rackseed converge gpu01/);
    expect(await eventTypes('gpu01')).toEqual(['assigned', 'provision_started', 'installed']);

    await bring('gpu01', [{ type: 'configure_started' }, { type: 'failed', reason: 'states: 1 failed: /etc/slurm/slurm.conf', stage: 'states' }]);
    const [statesFailed] = await service.run([node('gpu01')]);
    expect(statesFailed).toMatchObject({ ready: true, state: 'failed' });
    expect(statesFailed?.lifecycleNote).toMatch(/^node failed in states: .*rackseed converge gpu01: states, then readiness/);
    expect(await store.getNode('gpu01')).toMatchObject({ state: 'failed', stage: 'states', reason: 'states: 1 failed: /etc/slurm/slurm.conf' });
  });

  it("an operator's run on a node whose states are being applied stores its evidence and leaves the lifecycle to the convergence", async () => {
    // A pass would make it ready before its states finish (and a states failure then found it no longer
    // configuring and was dropped); a failure would mark it failed under the running apply.
    await bring('gpu01', TO_CONFIGURING);
    let transport = gpuNode({ state: 'IDLE' });
    const service = new ReadinessService({ inventory, store, settings, log, transportFor: async () => transport });
    const [passing] = await service.run([node('gpu01')]);
    expect(passing).toMatchObject({ ready: true, state: 'configuring' });
    expect(passing?.lifecycleNote).toMatch(/^node is configuring \(its states are being applied\): lifecycle left to the convergence/);
    transport = gpuNode({ state: 'DOWN' });
    const [failing] = await service.run([node('gpu01')]);
    expect(failing).toMatchObject({ ready: false, state: 'configuring' });
    expect(await eventTypes('gpu01')).toEqual(['assigned', 'provision_started', 'installed', 'configure_started']);
    expect(await store.listRuns({ node: 'gpu01', kind: 'readiness' })).toHaveLength(2);
    // The convergence's own run, once the states are applied, decides.
    transport = gpuNode({ state: 'IDLE' });
    const [owned] = await service.run([node('gpu01')], undefined, { byConvergence: true });
    expect(owned).toMatchObject({ ready: true, state: 'ready' });
  });

  it('a ready node that stops passing goes to failed; one that still passes records nothing new', async () => {
    await bring('gpu01', [...TO_INSTALLED, { type: 'configure_started' }, { type: 'ready' }]);
    let transport = gpuNode({ state: 'IDLE' });
    const service = new ReadinessService({ inventory, store, settings, log, transportFor: async () => transport });
    await service.run([node('gpu01')]);
    expect(await eventTypes('gpu01')).toEqual(['assigned', 'provision_started', 'installed', 'configure_started', 'ready']);
    transport = gpuNode({ state: 'DOWN+NOT_RESPONDING' });
    const [report] = await service.run([node('gpu01')]);
    expect(report).toMatchObject({ ready: false, state: 'failed' });
    expect((await eventTypes('gpu01')).at(-1)).toBe('failed');
  });

  it('an unreachable node fails base.ssh; the other node is still checked', async () => {
    await bring('gpu01', TO_CONFIGURING);
    await bring('head01', [{ type: 'assigned', group: 'head' }, { type: 'provision_started' }, { type: 'installed' }, { type: 'configure_started' }]);
    const head = new FakeTransport('head01', {
      handler: (command) => {
        if (command.includes('@@rackseed-facts')) return out(FACTS_OUTPUT);
        if (command === 'uname -n') return out('head01\n');
        if (command === 'cat /etc/hosts') return out(HOSTS);
        if (command.startsWith('scontrol ping')) return out('Slurmctld(primary) at head01 is UP\n@@rackseed slurmctld@@\nactive\n');
        return out('', 127, `unexpected: ${command}`);
      },
    });
    const service = new ReadinessService({
      inventory,
      store,
      settings,
      log,
      transportFor: async (n) => {
        if (n.name === 'gpu01') throw new RackseedError('STATE_TRANSPORT', 'gpu01: connect ECONNREFUSED 10.0.1.11:22');
        return head;
      },
    });
    const reports = await service.run([node('head01'), node('gpu01')], undefined, { byConvergence: true });
    expect(reports.map((r) => [r.node, r.ready, r.state])).toEqual([
      ['head01', true, 'ready'],
      ['gpu01', false, 'failed'],
    ]);
    expect(reports[1]?.evidence).toEqual([
      { check: 'base.ssh', role: 'base', expected: 'reachable over SSH', seen: 'unreachable', pass: false, reason: 'STATE_TRANSPORT: gpu01: connect ECONNREFUSED 10.0.1.11:22' },
    ]);
    expect(reports[1]?.error).toEqual({ code: 'STATE_TRANSPORT', message: 'gpu01: connect ECONNREFUSED 10.0.1.11:22' });
    expect((await store.getNode('gpu01'))?.reason).toMatch(/^readiness: base\.ssh \(STATE_TRANSPORT: gpu01: connect ECONNREFUSED/);
  });

  it('a node still provisioning is checked and its run stored, but its lifecycle is left alone', async () => {
    await bring('gpu01', [{ type: 'assigned', group: 'gpu' }, { type: 'provision_started' }]);
    const service = new ReadinessService({ inventory, store, settings, log, transportFor: async () => gpuNode({ state: 'DOWN' }) });
    const [report] = await service.run([node('gpu01')]);
    expect(report).toMatchObject({ ready: false, state: 'provisioning' });
    expect(report?.lifecycleNote).toMatch(/provisioning/);
    expect(await eventTypes('gpu01')).toEqual(['assigned', 'provision_started']);
    expect(await store.listRuns({ node: 'gpu01', kind: 'readiness' })).toHaveLength(1);
  });

  it('expects what the pillar files say (a driver pinned in groups/<group>.yaml), as the states installed it', async () => {
    await bring('gpu01', TO_INSTALLED);
    const pillarDir = path.join(dir, 'pillar');
    mkdirSync(path.join(pillarDir, 'groups'), { recursive: true });
    const pinFile = path.join(pillarDir, 'groups', 'gpu.yaml');
    const pinOf = (r: NodeReadinessReport | undefined) => r?.evidence.find((e) => e.check === 'nvidia.driver_pin');
    const run = async (extra: { pillarDir?: string }) =>
      (await new ReadinessService({ inventory, store, settings: { ...settings, ...extra }, log, transportFor: async () => gpuNode({ state: 'IDLE' }) }).run([node('gpu01')]))[0];

    writeFileSync(pinFile, "nvidia: { driver: '550.54.15' }\n", { mode: 0o600 });
    expect(pinOf(await run({}))).toBeUndefined();
    expect(pinOf(await run({ pillarDir }))).toMatchObject({ expected: '550.54.15', seen: '535.161.08', pass: false });
    writeFileSync(pinFile, "nvidia: { driver: '535.161.08' }\n", { mode: 0o600 });
    const pinned = await run({ pillarDir });
    expect(pinOf(pinned)).toMatchObject({ expected: '535.161.08', pass: true });
    expect(pinned?.ready).toBe(true);

    // A pillar file others can read is refused, as for state runs: a failing check, not a crashed run.
    chmodSync(pinFile, 0o644);
    const refused = await run({ pillarDir });
    expect(refused?.ready).toBe(false);
    expect(refused?.evidence.find((e) => e.check === 'base.pillar')).toMatchObject({ pass: false, seen: 'CONFIG_INVALID', reason: expect.stringContaining('chmod 600') });
  });

  it('last() reports nodes never checked without a run', async () => {
    const service = new ReadinessService({ inventory, store, settings, log, transportFor: async () => gpuNode({ state: 'IDLE' }) });
    expect(await service.last([node('head01')])).toEqual([{ node: 'head01', ready: false }]);
  });
});
