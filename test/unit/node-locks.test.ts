import { rm } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';
import type { LifecycleEvent } from '../../server/model/lifecycle.js';
import { AuditService } from '../../server/services/audit-service.js';
import { ConvergenceService } from '../../server/services/convergence.js';
import { NodeLocks } from '../../server/services/node-locks.js';
import { ReadinessService } from '../../server/services/readiness-service.js';
import { StateService } from '../../server/services/state-service.js';
import { FakeTransport } from '../../server/state/transport/fake.js';
import type { ObservedStore } from '../../server/store/index.js';
import { stateServiceDeps, workdirWithStore } from '../support/workdir.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('NodeLocks', () => {
  it('runs one holder of a node at a time, in arrival order; other nodes do not wait', async () => {
    const locks = new NodeLocks();
    const log: string[] = [];
    const hold = (node: string, tag: string, ms: number) =>
      locks.withNode(node, async () => {
        log.push(`${tag}+`);
        await sleep(ms);
        log.push(`${tag}-`);
        return tag;
      });
    const results = await Promise.all([hold('n1', 'a', 40), hold('n1', 'b', 10), hold('n2', 'c', 5), hold('n1', 'd', 1)]);
    expect(results).toEqual(['a', 'b', 'c', 'd']);
    expect(log.filter((l) => !l.startsWith('c'))).toEqual(['a+', 'a-', 'b+', 'b-', 'd+', 'd-']);
    // n2 ran while n1 was held.
    expect(log.indexOf('c-')).toBeLessThan(log.indexOf('a-'));
    expect(locks.isBusy('n1')).toBe(false);
  });

  it('acquireAll: the free locks are the caller\'s before anyone asking next, a held one is waited for, one release lets all go', async () => {
    const locks = new NodeLocks();
    const releaseN2 = await locks.acquire('n2');
    let all: (() => void) | undefined;
    const taking = locks.acquireAll(['n3', 'n1', 'n2', 'n1']).then((release) => (all = release));
    // Asked for after acquireAll was called, before it resolved: queued behind it.
    const order: string[] = [];
    const next = locks.withNode('n1', async () => void order.push('next on n1'));
    await sleep(10);
    expect(all).toBeUndefined();
    releaseN2();
    await taking;
    order.push('all held');
    all!();
    await next;
    expect(order).toEqual(['all held', 'next on n1']);
    expect(['n1', 'n2', 'n3'].some((n) => locks.isBusy(n))).toBe(false);
  });

  it('releases when the holder throws, and the next one runs', async () => {
    const locks = new NodeLocks();
    const failing = locks.withNode('n1', async () => {
      throw new Error('boom');
    });
    const next = locks.withNode('n1', async () => 'ran');
    await expect(failing).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ran');
    expect(locks.isBusy('n1')).toBe(false);
  });
});

/**
 * The services that change a node share one NodeLocks (as the server wires them): an operator's apply, a readiness
 * check and a convergence attempt on one node never overlap. The node's one state holds a dpkg-like lock for 150 ms:
 * a second apply beside it fails, as apt-get does on a real node.
 */
const INVENTORY = 'cluster: { name: demo }\ngroups:\n  g: { roles: [worker] }\nnodes:\n  - { name: n1, mac: "52:54:00:00:07:01", ip: 10.0.7.1, group: g }\n  - { name: n2, mac: "52:54:00:00:07:02", ip: 10.0.7.2, group: g }\n';
const TOP = "base:\n  '*':\n    - pkgs\n";
const PKGS_SLS = ['pkgs:', '  cmd.run:', '    - name: apt-get-install', ''].join('\n');
const FACTS = '@@rackseed-facts os-release@@\nID=debian\nVERSION_ID="12"\n@@rackseed-facts hostname@@\nn1\n@@rackseed-facts end@@\n';

describe('one operation at a time on a node (real state, readiness and convergence services)', () => {
  let dir: string;
  let store: ObservedStore;
  let inFlight: number;
  let maxInFlight: number;
  let applyFails: boolean;
  /** What happened on the node, in order (the apt-get of an apply, an audit's connection). */
  let timeline: string[];
  const log = createLogger('silent');

  const aptGet = async () => {
    if (inFlight > 0) return { code: 100, stdout: '', stderr: 'E: Could not get lock /var/lib/dpkg/lock-frontend' };
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await sleep(150);
    timeline.push('apt-get ends');
    inFlight -= 1;
    return applyFails ? { code: 1, stdout: '', stderr: 'E: Unable to locate package nonesuch' } : { code: 0, stdout: 'installed', stderr: '' };
  };

  const transport = async () =>
    new FakeTransport('n1', {
      handler: (command) => {
        if (command.includes('@@rackseed-facts')) return { code: 0, stdout: FACTS, stderr: '' };
        if (command.includes('apt-get-install')) return aptGet();
        return undefined;
      },
    });

  const services = (locks: NodeLocks | undefined) => {
    const deps = stateServiceDeps(dir, store, transport, log);
    const states = new StateService({ ...deps, ...(locks ? { locks } : {}) });
    const readiness = new ReadinessService({
      inventory: deps.inventory,
      store,
      settings: { concurrency: 2, commandTimeoutMs: 5_000, connectTimeoutMs: 1_000, sshPort: 22, pillarDir: deps.settings.pillarDir },
      log,
      transportFor: transport,
      ...(locks ? { locks } : {}),
    });
    const convergence = new ConvergenceService({
      inventory: deps.inventory,
      store,
      states,
      readiness,
      settings: { enabled: true, probeIntervalMs: 3_600_000, maxAttempts: 1, backoffBaseMs: 1_000, backoffMaxMs: 1_000, concurrency: 2, sshPort: 22 },
      log,
      probe: async () => false,
      ...(locks ? { locks } : {}),
    });
    return { inventory: deps.inventory, states, readiness, convergence };
  };

  beforeEach(async () => {
    ({ dir, store } = await workdirWithStore('rackseed-node-locks-', { 'sls/top.sls': TOP, 'sls/pkgs.sls': PKGS_SLS, 'inventory.yaml': INVENTORY }));
    inFlight = 0;
    maxInFlight = 0;
    applyFails = false;
    timeline = [];
    const events: LifecycleEvent[] = [{ type: 'assigned', group: 'g' }, { type: 'provision_started' }, { type: 'installed' }, { type: 'configure_started' }];
    for (const event of events) await store.recordEvent({ node: 'n1', event });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('two applies of one node queue instead of running side by side', async () => {
    const { inventory, states } = services(new NodeLocks());
    const n1 = inventory.inventory.nodes.get('n1')!;
    const reports = await Promise.all([states.run([n1], 'apply'), states.run([n1], 'apply')]);
    expect(reports.flat().map((r) => r.result)).toEqual(['changed', 'changed']);
    expect(maxInFlight).toBe(1);
  });

  it('an audit that arrives during an apply waits for it (it reported the apply half done as drift)', async () => {
    const locks = new NodeLocks();
    const { inventory, states } = services(locks);
    const deps = stateServiceDeps(dir, store, transport, log);
    const audit = new AuditService({
      ...deps,
      locks,
      transportFor: async () => {
        timeline.push('audit connects');
        return transport();
      },
    });
    const n1 = inventory.inventory.nodes.get('n1')!;
    const applying = states.run([n1], 'apply');
    // The apply's apt-get is running (it holds dpkg's lock on a real node).
    await expect.poll(() => inFlight, { timeout: 5_000 }).toBe(1);
    const [report] = await audit.audit([n1]);
    await applying;
    expect(timeline).toEqual(['apt-get ends', 'audit connects']);
    expect(report!.reachable).toBe(true);
  });

  it('a fleet audit does not hold a slot waiting for a busy node: the free nodes are audited first', async () => {
    const locks = new NodeLocks();
    const { inventory } = services(locks);
    const deps = stateServiceDeps(dir, store, transport, log);
    const audited: string[] = [];
    const audit = new AuditService({
      ...deps,
      settings: { ...deps.settings, concurrency: 1 },
      locks,
      transportFor: async (node) => {
        audited.push(node.name);
        return transport();
      },
    });
    // Something else (an apply, a convergence) holds n1 for now.
    const release = await locks.acquire('n1');
    const auditing = audit.audit([inventory.inventory.nodes.get('n1')!, inventory.inventory.nodes.get('n2')!]);
    // Before: the audit's only slot waited on n1 and n2 was not audited until n1's operation ended.
    await expect.poll(() => audited, { timeout: 5_000 }).toEqual(['n2']);
    release();
    const reports = await auditing;
    expect(audited).toEqual(['n2', 'n1']);
    expect(reports.map((r) => r.node)).toEqual(['n1', 'n2']);
  });

  it("an operator's apply while the node converges does not fail the convergence", async () => {
    const { inventory, states, convergence } = services(new NodeLocks());
    await convergence.start();
    try {
      const n1 = inventory.inventory.nodes.get('n1')!;
      const operator = states.run([n1], 'apply');
      await sleep(30);
      // start() resumed the node's convergence already (it is configuring): this one joins it or follows it.
      expect(['queued', 'coalesced']).toContain((await convergence.request('n1', 'operator')).status);
      const [mine] = await operator;
      await convergence.whenIdle();
      // Before: the second apt-get met the first one's lock and failed (whichever run it was).
      expect(mine!.result).toBe('changed');
      expect(maxInFlight).toBe(1);
      expect((await store.getNode('n1'))?.state).toBe('ready');
    } finally {
      await convergence.close();
    }
  });

  it('a readiness check on a failed node and a convergence whose apply fails: the node ends failed in its states, not ready', async () => {
    await store.recordEvent({ node: 'n1', event: { type: 'failed', reason: 'readiness failed earlier', stage: 'readiness' } });
    applyFails = true;
    const { inventory, readiness, convergence } = services(new NodeLocks());
    await convergence.start();
    try {
      const n1 = inventory.inventory.nodes.get('n1')!;
      const check = readiness.run([n1]);
      expect(await convergence.request('n1', 'operator')).toMatchObject({ status: 'queued' });
      const [report] = await check;
      expect(report!.ready).toBe(true);
      await convergence.whenIdle();
      expect(await store.getNode('n1')).toMatchObject({ state: 'failed', stage: 'states' });
    } finally {
      await convergence.close();
    }
  });
});
