import { rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditService } from '../../server/services/audit-service.js';
import { ReadinessService } from '../../server/services/readiness-service.js';
import { StateService, type NodeRunReport } from '../../server/services/state-service.js';
import { FakeTransport } from '../../server/state/transport/fake.js';
import type { ObservedStore } from '../../server/store/index.js';
import { stateServiceDeps, workdirWithStore } from '../support/workdir.js';

/**
 * Failure injection: the store refuses the write that ends a run (disk full). The run must not pass silently: the
 * error is logged and reported (STORE_UNAVAILABLE, which convergence retries), the operator's stream gets the node,
 * and the row the store still holds as "running" is closed as failed by the server's next start (abandonRuns).
 */
const INVENTORY = 'cluster: { name: demo }\ngroups:\n  compute: { roles: [base] }\nnodes:\n  - { name: cn01, mac: "52:54:00:00:05:01", ip: 10.0.5.1, group: compute }\n';
const TOP = 'base:\n  base:\n    - marker\n';
const MARKER_SLS = ['marker:', '  cmd.run:', '    - name: touch /srv/marker', ''].join('\n');
const FACTS = '@@rackseed-facts os-release@@\nID=debian\n@@rackseed-facts end@@\n';

describe('a run whose end the store cannot take', () => {
  let dir: string;
  let store: ObservedStore;
  let failing: ObservedStore;
  let lines: Array<Record<string, unknown>>;
  let finishCalls = 0;
  let deps: ConstructorParameters<typeof StateService>[0];

  beforeEach(async () => {
    ({ dir, store } = await workdirWithStore('rackseed-run-store-', { 'sls/top.sls': TOP, 'sls/marker.sls': MARKER_SLS, 'inventory.yaml': INVENTORY }));
    finishCalls = 0;
    failing = new Proxy(store, {
      get(target, key, receiver) {
        if (key === 'finishRun') {
          return async () => {
            finishCalls++;
            throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
          };
        }
        const value = Reflect.get(target, key, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    lines = [];
    const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), cb()) }));
    const transport = new FakeTransport('cn01', { handler: (command) => (command.includes('@@rackseed-facts') ? { code: 0, stdout: FACTS, stderr: '' } : { code: 0, stdout: '', stderr: '' }) });
    deps = { ...stateServiceDeps(dir, failing, async () => transport, log), serverName: 'rs1' };
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const nodes = () => [...deps.inventory.inventory.nodes.values()];

  it('state apply: retried, then reported STORE_UNAVAILABLE, streamed and logged; the next start closes the row', async () => {
    const streamed: NodeRunReport[] = [];
    const [report] = await new StateService(deps).run(nodes(), 'apply', (r) => streamed.push(r));
    expect(finishCalls).toBe(3);
    expect(report).toMatchObject({ node: 'cn01', result: 'failed', error: { code: 'STORE_UNAVAILABLE', message: expect.stringContaining('database or disk is full') } });
    // Before: the stream got nothing for the node (an empty table), and nothing was logged.
    expect(streamed.map((r) => r.error?.code)).toEqual(['STORE_UNAVAILABLE']);
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual(['the end of the run could not be stored: it reads "running" until this server starts again', 'state run could not be carried out']);
    expect(lines.find((l) => l.level === 50)).toMatchObject({ node: 'cn01' });

    const [left] = await store.listRuns();
    expect(left).toMatchObject({ result: 'running', summary: { server: 'rs1' } });
    expect(await store.abandonRuns({ server: 'rs1', before: Date.now() + 1, finishedAt: Date.now(), error: { code: 'RUN_ABANDONED', message: 'x' } })).toBe(1);
    expect((await store.listRuns())[0]?.result).toBe('failed');
  });

  it('readiness and audit: the same, each run owned by the server', async () => {
    const readiness = await new ReadinessService({ ...deps, settings: { ...deps.settings } }).run(nodes());
    expect(readiness[0]).toMatchObject({ ready: false, error: { code: 'STORE_UNAVAILABLE' } });
    const audit = await new AuditService(deps).audit(nodes());
    expect(audit[0]?.error).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect((await store.listRuns()).map((r) => [r.kind, r.result, r.summary.server])).toEqual([
      ['audit', 'running', 'rs1'],
      ['readiness', 'running', 'rs1'],
    ]);
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual(expect.arrayContaining(['readiness could not be checked', 'audit could not be carried out']));
  });
});
