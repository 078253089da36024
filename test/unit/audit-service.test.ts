import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../server/cli/client.js';
import { createLogger } from '../../server/log.js';
import { RackseedError } from '../../server/model/errors.js';
import type { LifecycleEvent } from '../../server/model/lifecycle.js';
import { auditRoutes } from '../../server/net/http/audit-routes.js';
import { errorHandler } from '../../server/net/http/errors.js';
import { AuditService } from '../../server/services/audit-service.js';
import { fullyAudited } from '../../server/services/audit-report.js';
import { formatAuditNode } from '../../server/cli/commands/audit.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { NodeIdentity } from '../../server/services/node-identity.js';
import { FakeTransport } from '../../server/state/transport/fake.js';
import type { ObservedStore } from '../../server/store/index.js';
import { workdirWithStore } from '../support/workdir.js';

const INVENTORY = `
cluster: { name: demo }
groups:
  compute: { roles: [base] }
nodes:
  - { name: cn01, mac: "52:54:00:00:05:01", ip: 10.0.5.1, group: compute }
  - { name: cn02, mac: "52:54:00:00:05:02", ip: 10.0.5.2, group: compute }
`;

const TOP = 'base:\n  base:\n    - match: role\n    - marker\n';
const MARKER_SLS = 'make-marker:\n  cmd.run:\n    - name: touch /srv/marker\n    - unless: test -e /srv/marker\n';

/** cn01: facts, its name, an /etc/hosts that lacks cn02, and no marker file yet. */
function cn01(): FakeTransport {
  return new FakeTransport('cn01', {
    handler: (command) => {
      if (command.includes('@@rackseed-facts')) return { code: 0, stdout: '@@rackseed-facts os-release@@\nID=debian\nVERSION_ID="12"\n@@rackseed-facts end@@\n', stderr: '' };
      if (command === 'uname -n') return { code: 0, stdout: 'cn01\n', stderr: '' };
      if (command === 'cat /etc/hosts') return { code: 0, stdout: '10.0.5.1 cn01\n', stderr: '' };
      if (command.includes('test -e /srv/marker')) return { code: 1, stdout: '', stderr: '' };
      return { code: 127, stdout: '', stderr: `unexpected: ${command}` };
    },
  });
}

const TO_READY: LifecycleEvent[] = [{ type: 'assigned', group: 'compute' }, { type: 'provision_started' }, { type: 'installed' }, { type: 'configure_started' }, { type: 'ready' }];

describe('AuditService (FakeTransport, SQLite store) and POST /audit', () => {
  let dir: string;
  let store: ObservedStore;
  let inventory: InventoryService;
  let transport: FakeTransport;
  let opened: string[];
  let audit: AuditService;
  const log = createLogger('silent');

  beforeEach(async () => {
    ({ dir, store } = await workdirWithStore('rackseed-audit-unit-', { 'sls/top.sls': TOP, 'sls/marker.sls': MARKER_SLS, 'inventory.yaml': INVENTORY }));
    inventory = new InventoryService(join(dir, 'inventory.yaml'), log);
    for (const node of ['cn01', 'cn02']) for (const event of TO_READY) await store.recordEvent({ node, event });
    transport = cn01();
    opened = [];
    audit = new AuditService({
      inventory,
      store,
      identity: new NodeIdentity(join(dir, 'data')),
      settings: { roots: [join(dir, 'sls')], pillarDir: join(dir, 'pillar'), concurrency: 2, commandTimeoutMs: 5_000, connectTimeoutMs: 1_000, sshPort: 22 },
      log,
      transportFor: async (node) => {
        opened.push(node.name);
        if (node.name === 'cn02') throw new RackseedError('STATE_TRANSPORT', 'cn02: cannot connect to 10.0.5.2:22: ECONNREFUSED');
        return transport;
      },
    });
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('dry-runs and checks over one connection, runs nothing that changes the node, and stores one audit run per node', async () => {
    const nodes = [...inventory.inventory.nodes.values()];
    const [one, two] = await audit.audit(nodes);

    expect(one).toMatchObject({ node: 'cn01', drift: true, reachable: true, failedStates: [] });
    expect(one!.wouldChange.map((s) => `${s.module}.${s.fun} ${s.id}`)).toEqual(['cmd.run make-marker']);
    expect(one!.failedChecks.map((e) => [e.check, e.reason])).toEqual([['base.hosts', '/etc/hosts lacks 10.0.5.2 cn02']]);
    expect(one!.error).toBeUndefined();
    // Test mode: the command itself never ran; the connection was opened once and closed once, by the audit.
    expect(transport.commands.some((c) => c.includes('touch /srv/marker') && !c.includes('test -e'))).toBe(false);
    expect(transport.calls.filter((c) => c.op === 'close')).toHaveLength(1);
    expect(transport.calls.at(-1)).toEqual({ op: 'close' });

    expect(two).toMatchObject({ node: 'cn02', drift: true, reachable: false, wouldChange: [], error: { code: 'STATE_TRANSPORT' } });
    expect(two!.failedChecks).toEqual([expect.objectContaining({ check: 'base.ssh', pass: false, reason: expect.stringContaining('ECONNREFUSED') })]);
    expect(opened.sort()).toEqual(['cn01', 'cn02']);

    const runs = await store.listRuns({ limit: 100 });
    expect(runs.map((r) => [r.node, r.kind, r.result]).sort()).toEqual([['cn01', 'audit', 'changed'], ['cn02', 'audit', 'failed']]);
    // Auditing a ready node with a failing check leaves it ready: the audit records no lifecycle event, and stores
    // no facts (a changed CPU count seen by an audit must still re-render slurm.conf at the next apply).
    for (const node of ['cn01', 'cn02']) {
      expect((await store.getNode(node))?.state).toBe('ready');
      expect((await store.getNode(node))?.facts).toEqual({});
      expect(await store.listEvents({ node })).toHaveLength(TO_READY.length);
    }
  });

  it('a readiness check whose command timed out makes the audit incomplete (run failed), not drift', async () => {
    // cn01's dry run answers; its checks' commands time out (a hung node, a dropped connection).
    const base = cn01();
    transport = new FakeTransport('cn01', {
      handler: (command, _self, options) => {
        if (command === 'uname -n' || command === 'cat /etc/hosts') throw new RackseedError('STATE_TIMEOUT', `cn01: ${command} did not finish within 5 s`);
        return base.exec(command, options);
      },
    });
    const [one] = await audit.audit([inventory.inventory.nodes.get('cn01')!]);
    expect(one!.failedChecks.map((e) => [e.check, e.seen, e.notRun])).toEqual([
      ['base.hostname', 'STATE_TIMEOUT', true],
      ['base.hosts', 'STATE_TIMEOUT', true],
    ]);
    expect(fullyAudited(one!)).toBe(false);
    const [run] = await store.listRuns({ node: 'cn01', kind: 'audit' });
    expect(run?.result).toBe('failed');
    expect(formatAuditNode(one!).split('\n')[0]).toMatch(/^cn01: DRIFT: .*; not fully audited: 2 checks could not run \(base\.hostname: STATE_TIMEOUT, base\.hosts: STATE_TIMEOUT\)$/);
  });

  it('POST /audit audits every node without targets, the named ones with, and rejects targets that are not a list of strings', async () => {
    const app = express();
    app.use('/api/v1', auditRoutes({ inventory, audit, log }));
    app.use(errorHandler(log));
    const server: Server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    try {
      const client = new ApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'test-token');
      const lines: Array<{ type: string; nodes?: string[] }> = [];
      const all = await client.postStream('/audit', {}, (l) => lines.push(l as { type: string }));
      expect(lines[0]).toEqual({ type: 'start', nodes: ['cn01', 'cn02'] });
      expect(all).toEqual({ type: 'summary', nodes: 2, drifted: 1, clean: 0, unreachable: 1, incomplete: 0 });
      const named = await client.postStream('/audit', { targets: ['cn02'] }, () => undefined);
      expect(named).toMatchObject({ nodes: 1, unreachable: 1 });
      await expect(client.postStream('/audit', { targets: 'cn01' }, () => undefined)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      // An empty selection is not "every node".
      await expect(client.postStream('/audit', { targets: [] }, () => undefined)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      await expect(client.postStream('/audit', { targets: ['nope01'] }, () => undefined)).rejects.toMatchObject({ code: 'INVENTORY_NOT_FOUND' });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
