import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';
import { runtimeRegistry } from '../../server/metrics/runtime-metrics.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { StateService } from '../../server/services/state-service.js';
import { FakeTransport } from '../../server/state/transport/fake.js';
import type { ObservedStore } from '../../server/store/index.js';
import { stateServiceDeps, workdirWithStore } from '../support/workdir.js';

/**
 * What `rackseed state apply` and convergence compile: a module argument that is wrong (a typo) must fail the
 * compile, naming the file, the line and the key, before any state of the node runs.
 */
const INVENTORY = 'cluster: { name: demo }\ngroups:\n  compute: { roles: [base] }\nnodes:\n  - { name: cn01, mac: "52:54:00:00:05:01", ip: 10.0.5.1, group: compute }\n';
const TOP = 'base:\n  base:\n    - match: role\n    - web\n';
const WEB_SLS = ['marker:', '  cmd.run:', '    - name: touch /srv/marker', 'nginx:', '  service.running:', '    - enabled: true', ''].join('\n');

describe('StateService compiles with argument validation', () => {
  let dir: string;
  let store: ObservedStore;
  let transport: FakeTransport;
  let service: StateService;

  beforeEach(async () => {
    ({ dir, store } = await workdirWithStore('rackseed-state-compile-', { 'sls/top.sls': TOP, 'sls/web.sls': WEB_SLS, 'inventory.yaml': INVENTORY }));
    const log = createLogger('silent');
    transport = new FakeTransport('cn01', {
      handler: (command) => (command.includes('@@rackseed-facts') ? { code: 0, stdout: '@@rackseed-facts os-release@@\nID=debian\n@@rackseed-facts end@@\n', stderr: '' } : undefined),
    });
    service = new StateService(stateServiceDeps(dir, store, async () => transport, log));
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a misspelt argument fails the run with file, line and key, and nothing ran on the node', async () => {
    const node = [...new InventoryService(join(dir, 'inventory.yaml'), createLogger('silent')).inventory.nodes.values()];
    const [report] = await service.run(node, 'apply');
    expect(report).toMatchObject({ result: 'failed', error: { code: 'SLS_INVALID' } });
    expect(report!.error!.message).toMatch(/web\.sls:4: state "nginx" service\.running: /);
    expect(report!.error!.message).toMatch(/unknown key "enabled" \(did you mean "enable"\?/);
    expect(transport.commands.filter((c) => !c.includes('@@rackseed-facts'))).toEqual([]);
  });

  it('every state run, failed ones too, is observed in rackseed_run_duration_seconds by its mode and result', async () => {
    const count = async (kind: string, result: string) => {
      const metric = (await runtimeRegistry.getMetricsAsJSON()).find((m) => m.name === 'rackseed_run_duration_seconds');
      const values = (metric?.values ?? []) as Array<{ metricName?: string; labels: Record<string, string | number>; value: number }>;
      const value = values.find((v) => v.metricName === 'rackseed_run_duration_seconds_count' && v.labels.kind === kind && v.labels.result === result);
      return value?.value ?? 0;
    };
    const before = await count('apply', 'failed');
    const node = [...new InventoryService(join(dir, 'inventory.yaml'), createLogger('silent')).inventory.nodes.values()];
    await service.run(node, 'apply');
    expect(await count('apply', 'failed')).toBe(before + 1);
  });
});
