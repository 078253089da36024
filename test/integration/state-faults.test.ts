/**
 * What a state run does when things go wrong on real targets (sshd in network namespaces over Debian 12 trees,
 * test/support/ssh-target.ts), through the real StateService with a SQLite store: a command that hangs past its
 * timeout, a failhard state, and an SSH connection killed in the middle of a run. SLS trees are in
 * test/fixtures/sls-real/faults/<case>.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { NodeIdentity } from '../../server/services/node-identity.js';
import { StateService, type NodeRunReport } from '../../server/services/state-service.js';
import { FAILHARD_COMMENT } from '../../server/state/run/runner.js';
import { openSshTransport } from '../../server/state/transport/ssh.js';
import { openStore } from '../../server/store/index.js';
import type { ObservedStore } from '../../server/store/types.js';
import { startSshTargets, type SshTarget, type SshTargets } from '../support/ssh-target.js';
import { waitFor } from '../support/wait.js';

const FAULTS = path.resolve(import.meta.dirname, '../fixtures/sls-real/faults');

let lab: SshTargets;
let node01: SshTarget;
let node02: SshTarget;
let work: string;
let store: ObservedStore;
let inventory: InventoryService;
const log = createLogger('silent');

function service(tree: 'dropped' | 'timeout' | 'failhard', commandTimeoutMs = 60_000): StateService {
  const byName = new Map(lab.targets.map((t) => [t.name, t]));
  return new StateService({
    inventory,
    store,
    identity: new NodeIdentity(path.join(work, 'data')),
    settings: { roots: [path.join(FAULTS, tree)], pillarDir: path.join(work, 'pillar'), concurrency: 2, commandTimeoutMs, connectTimeoutMs: 5_000, sshPort: 22 },
    log,
    transportFor: async (node) => {
      const t = byName.get(node.name)!;
      return openSshTransport({ target: t.name, host: t.host, port: t.port, privateKey: t.privateKey, knownHostKey: t.hostKeyLine, connectTimeoutMs: 5_000 });
    },
  });
}

const nodes = (...names: string[]) => names.map((n) => inventory.inventory.nodes.get(n)!);
const summary = (r: NodeRunReport) => r.states.map((s) => [s.id, s.result]);

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('SSH targets need root (network namespaces, overlay mounts, chroot)');
  lab = await startSshTargets(2);
  [node01, node02] = lab.targets as [SshTarget, SshTarget];
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-state-faults-'));
  writeFileSync(
    path.join(work, 'inventory.yaml'),
    `cluster: { name: lab }\ngroups:\n  demo: {}\nnodes:\n${lab.targets.map((t, i) => `  - { name: ${t.name}, mac: "02:00:00:00:30:0${i + 1}", ip: ${t.ip}, group: demo }\n`).join('')}`,
  );
  store = await openStore({ kind: 'sqlite', path: path.join(work, 'rackseed.db') });
  await store.migrate();
  inventory = new InventoryService(path.join(work, 'inventory.yaml'), log);
}, 300_000);

afterAll(async () => {
  await store?.close();
  await lab?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('state run faults on real targets', () => {
  it('a command that hangs past its timeout fails its state, is killed on the node, and the run goes on', async () => {
    const [report] = await service('timeout', 4_000).run(nodes(node02.name), 'apply');
    expect(report!.error).toBeUndefined();
    expect(summary(report!)).toEqual([
      ['hang', false],
      ['next-cmd', true],
      ['next-file', true],
    ]);
    const hang = report!.states[0]!;
    expect(hang.comment).toMatch(/^Command timed out after 4000 ms: .*sleep 60/);
    expect(hang.changes).toEqual({});
    expect(report!.states[1]!.changes).toMatchObject({ retcode: 0, stdout: 'still running' });
    expect(node02.sh('cat /tmp/rackseed-after-timeout').stdout).toBe('the run went on\n');
    // The hung command and its shell are gone from the node, not left sleeping.
    await waitFor('the hung command to be killed', () => node02.sh('pgrep -x sleep || echo none').stdout === 'none\n', 10_000);
    expect(report!.result).toBe('failed');
    expect(report!.counts).toMatchObject({ failed: 1, changed: 2 });
    const stored = await store.getRun(report!.runId);
    // What the node was configured as: a role change made while the server is down is found from it at start.
    expect(stored).toMatchObject({ node: node02.name, kind: 'apply', result: 'failed', summary: { counts: { failed: 1 }, configuredAs: { group: 'demo', roles: [] } } });
  });

  it('a failing failhard state skips the rest of the run, and the stored run says failed', async () => {
    const reports = await service('failhard').run(nodes(node01.name, node02.name), 'apply');
    for (const [report, target] of [[reports[0]!, node01], [reports[1]!, node02]] as const) {
      expect(report.node).toBe(target.name);
      expect(summary(report)).toEqual([
        ['first', true],
        ['broken', false],
        ['later-file', false],
        ['later-cmd', false],
      ]);
      expect(report.states[1]).toMatchObject({ comment: 'Command "echo broken >&2; exit 3" failed with exit code 3', changes: { retcode: 3, stderr: 'broken' } });
      expect(report.states.slice(2).map((s) => s.comment)).toEqual([FAILHARD_COMMENT, FAILHARD_COMMENT]);
      expect(report.error).toEqual({ code: 'STATE_FAILHARD', message: expect.stringContaining('cmd_|-broken_|-') });
      expect(target.sh('ls /tmp | grep rackseed-failhard').stdout).toBe('rackseed-failhard-first\n');
      const stored = await store.getRun(report.runId);
      expect(stored).toMatchObject({ result: 'failed', summary: { mode: 'apply', counts: { failed: 3, changed: 1 }, error: { code: 'STATE_FAILHARD' } } });
      expect((stored!.details as Array<{ id: string; comment: string }>).map((s) => s.comment).slice(2)).toEqual([FAILHARD_COMMENT, FAILHARD_COMMENT]);
    }
  });

  it('an SSH connection killed mid-run fails that node\'s remaining states with STATE_TRANSPORT; the other node completes', async () => {
    const states = service('dropped');
    const running = states.run(nodes(node01.name, node02.name), 'apply');
    await waitFor('the slow state to start on node01', () => node01.sh('test -e /tmp/rackseed-slow-started').status === 0, 20_000);
    node01.kill();
    const [lost, survived] = await running;

    expect(lost!.node).toBe(node01.name);
    expect(lost!.result).toBe('failed');
    expect(lost!.error?.code).toBe('STATE_TRANSPORT');
    expect(lost!.error?.message).toMatch(new RegExp(`^${node01.name}: connection`));
    expect(summary(lost!)).toEqual([
      ['before', true],
      ['slow', false],
      ['after-file', false],
      ['after-cmd', false],
    ]);
    expect(lost!.states[1]!.comment).toBe(`Connection to ${node01.name} lost: ${lost!.error!.message}`);
    for (const s of lost!.states.slice(2)) expect(s.comment).toBe(`not run: connection to ${node01.name} lost: ${lost!.error!.message}`);

    expect(survived!.node).toBe(node02.name);
    expect(survived!.error).toBeUndefined();
    expect(survived!.result).toBe('changed');
    expect(summary(survived!)).toEqual([
      ['before', true],
      ['slow', true],
      ['after-file', true],
      ['after-cmd', true],
    ]);
    expect(node02.sh('ls /tmp/rackseed-slow-done /tmp/rackseed-after /tmp/rackseed-after-cmd').status).toBe(0);

    const storedLost = await store.getRun(lost!.runId);
    expect(storedLost).toMatchObject({ result: 'failed', summary: { error: { code: 'STATE_TRANSPORT' }, counts: { failed: 3, changed: 1 } } });
    expect((await store.getRun(survived!.runId))?.result).toBe('changed');

    // The next run cannot reach node01 at all: a failed run of its own with the reason, node02 unaffected.
    const [unreachable, fine] = await states.run(nodes(node01.name, node02.name), 'test');
    expect(unreachable).toMatchObject({ node: node01.name, result: 'failed', states: [], error: { code: 'STATE_TRANSPORT', message: expect.stringMatching(/cannot connect/) } });
    expect(fine!.error).toBeUndefined();
    const runs = await store.listRuns({ node: node01.name, kind: 'test' });
    expect(runs[0]).toMatchObject({ result: 'failed', summary: { error: { code: 'STATE_TRANSPORT' } } });
  });
});
