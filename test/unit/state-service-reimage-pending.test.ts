import { rm } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LifecycleEvent } from '../../server/model/lifecycle.js';
import { StateService } from '../../server/services/state-service.js';
import { FakeTransport } from '../../server/state/transport/fake.js';
import type { ObservedStore } from '../../server/store/index.js';
import { stateServiceDeps, workdirWithStore } from '../support/workdir.js';

/**
 * A node whose reimage is pending (reimage --group may have moved it into a group with other roles already) runs its
 * old OS until its next boot reinstalls it: an operator's `state apply` must not push the new roles onto that OS.
 */
const INVENTORY = 'cluster: { name: demo }\ngroups:\n  g: { roles: [worker] }\nnodes:\n  - { name: n1, mac: "52:54:00:00:08:01", ip: 10.0.8.1, group: g }\n';
const FACTS = '@@rackseed-facts os-release@@\nID=debian\nVERSION_ID="12"\n@@rackseed-facts end@@\n';

describe('state apply on a node whose reimage is pending', () => {
  let dir: string;
  let store: ObservedStore;
  let commands: string[];
  let service: StateService;

  beforeEach(async () => {
    ({ dir, store } = await workdirWithStore('rackseed-reimage-pending-', { 'sls/top.sls': "base:\n  '*':\n    - touch\n", 'sls/touch.sls': 'touch-it:\n  cmd.run:\n    - name: touch /etc/new-role\n', 'inventory.yaml': INVENTORY }));
    commands = [];
    const transport = async () =>
      new FakeTransport('n1', {
        handler: (command) => {
          commands.push(command);
          return command.includes('@@rackseed-facts') ? { code: 0, stdout: FACTS, stderr: '' } : { code: 0, stdout: '', stderr: '' };
        },
      });
    service = new StateService(stateServiceDeps(dir, store, transport));
    const events: LifecycleEvent[] = [{ type: 'assigned', group: 'g' }, { type: 'provision_started' }, { type: 'installed' }, { type: 'configure_started' }, { type: 'ready' }];
    for (const event of events) await store.recordEvent({ node: 'n1', event });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const n1 = () => stateServiceDeps(dir, store, undefined).inventory.inventory.nodes.get('n1')!;

  it('is refused with the reason and touches nothing; a dry run still looks; after a cancel it applies', async () => {
    expect((await store.recordEvent({ node: 'n1', event: { type: 'reimage_requested' } })).ok).toBe(true);
    const [refused] = await service.run([n1()], 'apply');
    expect(refused).toMatchObject({ result: 'failed', error: { code: 'REIMAGE_PENDING' } });
    expect(refused!.error!.message).toContain('rackseed reimage n1 --cancel');
    expect(commands).toEqual([]);
    const runs = await store.listRuns({ node: 'n1', kind: 'apply' });
    expect(runs[0]).toMatchObject({ result: 'failed' });

    const [dry] = await service.run([n1()], 'test');
    expect(dry!.result).not.toBe('failed');
    expect(commands.some((c) => c.includes('touch /etc/new-role'))).toBe(false);

    expect((await store.recordEvent({ node: 'n1', event: { type: 'reimage_cancelled' } })).ok).toBe(true);
    const [applied] = await service.run([n1()], 'apply');
    expect(applied!.result).toBe('changed');
    expect(commands.some((c) => c.includes('touch /etc/new-role'))).toBe(true);
  });
});
