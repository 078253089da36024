import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../server/log.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { NodeIdentity } from '../../server/services/node-identity.js';
import { StateService, type NodeRunReport } from '../../server/services/state-service.js';
import type { Transport } from '../../server/state/types.js';
import { openStore } from '../../server/store/index.js';
import type { ObservedStore } from '../../server/store/types.js';
import type { SshTarget } from './ssh-target.js';

/** The SLS tree that uses every state module (`demo` role). */
export const DEMO_SLS_DIR = path.resolve(import.meta.dirname, '../fixtures/sls-real/modules');

export interface DemoStates {
  work: string;
  store: ObservedStore;
  inventory: InventoryService;
  states: StateService;
  close(): Promise<void>;
}

/**
 * A real StateService over DEMO_SLS_DIR for SSH targets: the targets in group `demo` (MACs 02:00:00:00:<macByte>:0N),
 * the group's pillar (mode 0600: the service refuses pillar files others can read), a fresh SQLite store.
 */
export async function startDemoStates(
  targets: readonly SshTarget[],
  opts: { prefix: string; macByte: string; concurrency: number; transportFor: (target: SshTarget) => Promise<Transport> },
): Promise<DemoStates> {
  const work = mkdtempSync(path.join(tmpdir(), opts.prefix));
  const log = createLogger('warn');
  const nodes = targets.map((t, i) => `  - { name: ${t.name}, mac: "02:00:00:00:${opts.macByte}:0${i + 1}", ip: ${t.ip}, group: demo }\n`).join('');
  writeFileSync(path.join(work, 'inventory.yaml'), `cluster: { name: lab }\ngroups:\n  demo:\n    roles: [demo]\nnodes:\n${nodes}`);
  mkdirSync(path.join(work, 'pillar/groups'), { recursive: true });
  const pillarFile = path.join(work, 'pillar/groups/demo.yaml');
  writeFileSync(pillarFile, 'demo:\n  greeting: Welcome to\n  workers: 4\n');
  chmodSync(pillarFile, 0o600);
  const store = await openStore({ kind: 'sqlite', path: path.join(work, 'rackseed.db') });
  await store.migrate();
  const inventory = new InventoryService(path.join(work, 'inventory.yaml'), log);
  const byName = new Map(targets.map((t) => [t.name, t]));
  const states = new StateService({
    inventory,
    store,
    identity: new NodeIdentity(path.join(work, 'data')),
    settings: { roots: [DEMO_SLS_DIR], pillarDir: path.join(work, 'pillar'), concurrency: opts.concurrency, commandTimeoutMs: 120_000, connectTimeoutMs: 10_000, sshPort: 22 },
    log,
    transportFor: (node) => opts.transportFor(byName.get(node.name)!),
  });
  return {
    work,
    store,
    inventory,
    states,
    async close() {
      await store.close();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** Every node-level error and failed state of a run, as `node state: comment` lines (empty when all went well). */
export const runProblems = (reports: readonly NodeRunReport[]): string[] =>
  reports.flatMap((r) => [...(r.error ? [`${r.node}: ${r.error.message}`] : []), ...r.states.filter((s) => s.result === false).map((s) => `${r.node} ${s.id}: ${s.comment}`)]);
