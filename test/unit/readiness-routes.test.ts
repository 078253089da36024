import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../server/cli/client.js';
import { registerReady } from '../../server/cli/commands/ready.js';
import { CliExit } from '../../server/cli/exit.js';
import { createLogger } from '../../server/log.js';
import { errorHandler } from '../../server/net/http/errors.js';
import { readinessRoutes, splitTargets } from '../../server/net/http/readiness-routes.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { ReadinessService } from '../../server/services/readiness-service.js';
import type { ObservedStore } from '../../server/store/index.js';
import { FakeTransport } from '../../server/state/transport/fake.js';
import { workdirWithStore } from '../support/workdir.js';

const INVENTORY = `
cluster: { name: demo }
groups:
  k3s:
    roles: [base, k3s]
    data: { k3s: { role: agent } }
nodes:
  - { name: k3s01, mac: "52:54:00:00:03:01", ip: 10.0.3.1, group: k3s }
  - { name: k3s02, mac: "52:54:00:00:03:02", ip: 10.0.3.2, group: k3s }
`;

const HOSTS = '10.0.3.1 k3s01\n10.0.3.2 k3s02\n';

/** A fake k3s agent: Ready or not, answering the base checks correctly. */
function k3sNode(name: string, ready: boolean): FakeTransport {
  const nodeJson = JSON.stringify({ kind: 'Node', metadata: { name, labels: { 'rackseed.io/group': 'k3s' } }, status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', reason: ready ? 'KubeletReady' : 'KubeletNotReady', message: ready ? '' : 'container runtime network not ready' }] } });
  return new FakeTransport(name, {
    handler: (command) => {
      if (command.includes('@@rackseed-facts')) return { code: 0, stdout: `@@rackseed-facts uname@@\n6.1.0-31-amd64\nx86_64\n@@rackseed-facts end@@\n`, stderr: '' };
      if (command === 'uname -n') return { code: 0, stdout: `${name}\n`, stderr: '' };
      if (command === 'cat /etc/hosts') return { code: 0, stdout: HOSTS, stderr: '' };
      if (command.includes('kubectl')) return { code: 0, stdout: nodeJson, stderr: '' };
      return { code: 127, stdout: '', stderr: `unexpected: ${command}` };
    },
  });
}

describe('readiness API and `rackseed ready`', () => {
  let dir: string;
  let store: ObservedStore;
  let server: Server;
  let client: ApiClient;
  const log = createLogger('silent');

  beforeEach(async () => {
    ({ dir, store } = await workdirWithStore('rackseed-ready-api-', { 'inventory.yaml': INVENTORY }));
    const inventory = new InventoryService(join(dir, 'inventory.yaml'), log);
    // Configuring: their states are applied (convergence's job) and readiness is next.
    for (const n of ['k3s01', 'k3s02']) {
      for (const event of [{ type: 'assigned', group: 'k3s' }, { type: 'provision_started' }, { type: 'installed' }, { type: 'configure_started' }, { type: 'ready' }] as const) await store.recordEvent({ node: n, event });
    }
    const readiness = new ReadinessService({
      inventory,
      store,
      log,
      settings: { concurrency: 2, commandTimeoutMs: 5_000, connectTimeoutMs: 1_000, sshPort: 22 },
      transportFor: async (n) => k3sNode(n.name, n.name === 'k3s01'),
    });
    const app = express();
    app.use('/api/v1', readinessRoutes({ inventory, readiness, log }));
    app.use(errorHandler(log));
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    client = new ApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'test-token');
  });

  afterEach(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function cli(args: string[], json = false): Promise<{ output: string; exit: number }> {
    let output = '';
    const program = new Command().exitOverride();
    registerReady(program, () => ({ client, out: { json, write: (s) => (output += s) } }));
    try {
      await program.parseAsync(['ready', ...args], { from: 'user' });
      return { output, exit: 0 };
    } catch (err) {
      if (err instanceof CliExit) return { output, exit: err.code };
      throw err;
    }
  }

  it('POST /readiness/run streams start, one line per node and a summary; GET returns the stored result without checking again', async () => {
    const lines: unknown[] = [];
    const summary = await client.postStream('/readiness/run', { targets: ['k3s0[1-2]'] }, (l) => lines.push(l));
    expect(lines[0]).toEqual({ type: 'start', nodes: ['k3s01', 'k3s02'] });
    expect(lines.filter((l) => (l as { type: string }).type === 'node')).toHaveLength(2);
    expect(summary).toEqual({ type: 'summary', nodes: 2, readyNodes: 1, notReadyNodes: ['k3s02'], failingChecks: { 'k3s.node_ready': 1 } });

    const stored = await client.get<{ nodes: Array<{ node: string; state?: string; run?: { ready: boolean; failing: string[] } }> }>('/readiness?targets=k3s01,k3s02');
    expect(stored.nodes.map((n) => [n.node, n.state, n.run?.ready, n.run?.failing])).toEqual([
      ['k3s01', 'ready', true, []],
      ['k3s02', 'failed', false, ['k3s.node_ready']],
    ]);
    expect(await store.listRuns({ kind: 'readiness' })).toHaveLength(2);
  });

  it('rejects a run without targets and an unknown target', async () => {
    await expect(client.postStream('/readiness/run', { targets: [] }, () => undefined)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(client.get('/readiness?targets=nope01')).rejects.toMatchObject({ code: 'INVENTORY_NOT_FOUND' });
    // An empty list (`rackseed ready "$NODES"` with $NODES empty) is a mistake, as for every other verb: not "all".
    for (const q of ['', 'k3s01,', ',k3s01']) {
      await expect(client.get(`/readiness?targets=${q}`)).rejects.toMatchObject({ message: expect.stringMatching(/empty/) });
    }
  });

  it('`ready --check` prints the table and exits 1 when a node is not ready; `ready` shows the stored evidence', async () => {
    const checked = await cli(['--check', 'k3s01', 'k3s02']);
    expect(checked.exit).toBe(1);
    expect(checked.output).toMatch(/k3s01\s.*ready\s.*yes/);
    expect(checked.output).toMatch(/k3s02\s.*failed\s.*NO\s.*k3s\.node_ready/);
    expect(checked.output).toContain('k3s02  k3s.node_ready: node k3s02 is not Ready (KubeletNotReady: container runtime network not ready)');
    expect(checked.output).toContain('1 of 2 node(s) ready');

    const onlyReady = await cli(['k3s01']);
    expect(onlyReady.exit).toBe(0);
    expect(onlyReady.output).toContain('1 of 1 node(s) ready');

    const json = await cli(['k3s02'], true);
    expect(json.exit).toBe(1);
    const parsed = JSON.parse(json.output) as { nodes: Array<{ node: string; run: { evidence: Array<{ check: string; pass: boolean }> } }> };
    expect(parsed.nodes[0]?.run.evidence.filter((e) => !e.pass).map((e) => e.check)).toEqual(['k3s.node_ready']);
  });

  it('`ready` does not count a passing run from before the node was reimaged (its install then failed): NO, exit 1', async () => {
    await cli(['--check', 'k3s01']);
    expect((await cli(['k3s01'])).exit).toBe(0);
    for (const event of [{ type: 'reimage_requested' }, { type: 'provision_started' }, { type: 'failed', reason: 'disk gone', stage: 'partition' }] as const) {
      expect((await store.recordEvent({ node: 'k3s01', event })).ok).toBe(true);
    }
    const after = await cli(['k3s01']);
    expect(after.exit).toBe(1);
    expect(after.output).toMatch(/k3s01\s.*failed\s.*NO \(passed, then failed\)/);
    expect(after.output).toContain('0 of 1 node(s) ready');
    const stored = await client.get<{ nodes: Array<{ node: string; ready: boolean; run?: { ready: boolean } }> }>('/readiness?targets=k3s01');
    expect(stored.nodes).toMatchObject([{ node: 'k3s01', ready: false, run: { ready: true } }]);
  });

  it('`ready --check` on a node whose checks pass but whose states failed: NO with the reason, exit 1, not counted ready', async () => {
    for (const event of [{ type: 'configure_started' }, { type: 'failed', reason: 'states: 1 failed: /etc/rancher/k3s/config.yaml', stage: 'states' }] as const) {
      expect((await store.recordEvent({ node: 'k3s01', event })).ok).toBe(true);
    }
    const checked = await cli(['--check', 'k3s01']);
    expect(checked.exit).toBe(1);
    expect(checked.output).toMatch(/k3s01\s.*failed\s.*NO \(checks pass; node failed\)/);
    expect(checked.output).toMatch(/k3s01 {2}lifecycle: node failed in states: lifecycle left as it is/);
    expect(checked.output).toContain('0 of 1 node(s) ready');
    const lines: unknown[] = [];
    const summary = await client.postStream('/readiness/run', { targets: ['k3s01'] }, (l) => lines.push(l));
    expect(summary).toMatchObject({ readyNodes: 0, notReadyNodes: ['k3s01'], failingChecks: {} });
  });

  it('splits GET targets at commas outside hostlist brackets', () => {
    expect(splitTargets('gpu[01,03-04],head01, group:k3s')).toEqual(['gpu[01,03-04]', 'head01', 'group:k3s']);
  });
});
