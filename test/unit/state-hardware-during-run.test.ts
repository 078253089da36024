import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { StateService } from '../../server/services/state-service.js';
import { clusterFactsFromStore } from '../../server/state/cluster-facts.js';
import { FakeTransport } from '../../server/state/transport/fake.js';
import type { ObservedStore } from '../../server/store/index.js';
import { stateServiceDeps, workdirWithStore } from '../support/workdir.js';

/**
 * A GPU node's first apply installs the driver: the facts read before the states ran had no GPUs, so the node's
 * slurm.conf and gres.conf (and its peers') were rendered without them. The facts are read again after the apply.
 */
const INVENTORY = 'cluster: { name: demo }\ngroups:\n  gpu: { roles: [base] }\nnodes:\n  - { name: gpu01, mac: "52:54:00:00:05:01", ip: 10.0.5.1, group: gpu }\n';
const TOP = "base:\n  '*':\n    - driver\n";
const DRIVER_SLS = ['driver:', '  cmd.run:', '    - name: modprobe -- nvidia', '    - unless: test -e /dev/nvidia0', ''].join('\n');
const facts = (gpus: string) =>
  `@@rackseed-facts os-release@@\nID=debian\n@@rackseed-facts nproc@@\n64\n@@rackseed-facts meminfo@@\nMemTotal:       263856640 kB\n@@rackseed-facts gpus@@\n${gpus}@@rackseed-facts end@@\n`;
const H100 = 'NVIDIA H100 80GB HBM3, 81559, 535.183.01\n'.repeat(2);

describe('hardware that appears during an apply', () => {
  let dir: string;
  let store: ObservedStore;
  let service: StateService;
  let driverLoaded: boolean;

  beforeEach(async () => {
    ({ dir, store } = await workdirWithStore('rackseed-hw-run-', { 'sls/top.sls': TOP, 'sls/driver.sls': DRIVER_SLS, 'inventory.yaml': INVENTORY }));
    driverLoaded = false;
    await store.recordEvent({ node: 'gpu01', event: { type: 'assigned', group: 'gpu' } });
    const transport = () => new FakeTransport('gpu01', {
      handler: (command) => {
        if (command.includes('@@rackseed-facts')) return { code: 0, stdout: facts(driverLoaded ? H100 : ''), stderr: '' };
        if (command.includes('modprobe -- nvidia')) {
          driverLoaded = true;
          return { code: 0, stdout: '', stderr: '' };
        }
        if (command.includes('test -e /dev/nvidia0')) return { code: driverLoaded ? 0 : 1, stdout: '', stderr: '' };
        return undefined;
      },
    });
    service = new StateService(stateServiceDeps(dir, store, async () => transport()));
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is read again after an apply that changed something, stored, and reported as changed during the run; the next apply is quiet', async () => {
    const heard: string[] = [];
    service.onHardwareChange((n) => heard.push(n));
    const nodes = () => [...new InventoryService(join(dir, 'inventory.yaml'), createLogger('silent')).inventory.nodes.values()];
    const [first] = await service.run(nodes(), 'apply');
    expect(first).toMatchObject({ result: 'changed', hardwareChanged: true, hardwareChangedDuringRun: true });
    // Before: the GPUs the driver made visible were stored only by the next run (and the node's files never had them).
    expect(clusterFactsFromStore((await store.getNode('gpu01'))?.facts)?.gpus).toEqual([{ model: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 }, { model: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 }]);
    expect(heard).toEqual(['gpu01']);
    const [second] = await service.run(nodes(), 'apply');
    expect(second).toMatchObject({ result: 'success' });
    expect(second).not.toHaveProperty('hardwareChanged');
    expect(second).not.toHaveProperty('hardwareChangedDuringRun');
  });
});
