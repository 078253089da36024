import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../server/inventory/index.js';
import { createLogger } from '../../server/log.js';
import type { ResolvedNode } from '../../server/model/inventory.js';
import type { Evidence } from '../../server/readiness/types.js';
import type { NodeReadinessReport } from '../../server/services/readiness-service.js';
import { slurmHealthSync } from '../../server/services/slurm-health.js';
import type { Transport } from '../../server/state/types.js';
import type { Run } from '../../server/store/types.js';
import { FILE, GROUPS } from '../fixtures/inventory/inventories.js';

/** A controller and eight compute nodes: one run may drain two of them (a quarter). */
const inv = parseInventory(`${GROUPS}nodes:\n  - { name: head01, group: head, ip: 10.0.0.1 }\n  - { range: "gpu[1-8]", group: gpu, ip: 10.0.1.1 }\n`, FILE);

const ev = (check: string, pass: boolean): Evidence => ({ check, role: check.split('.')[0]!, expected: 'x', seen: pass ? 'IDLE' : 'y', pass, ...(pass ? {} : { reason: 'broken' }) });
const report = (node: string, ok: boolean, runId = `run-${node}`): NodeReadinessReport => ({
  node,
  runId,
  ready: ok,
  failing: ok ? [] : ['base.hosts'],
  summary: '',
  evidence: [ev('base.hosts', ok), ev('slurm.node_state', true)],
  startedAt: 0,
  durationMs: 1,
});

/** Failure injection: records the scripts the controller was asked to run, answers every node as drained. */
function setup(latest: Map<string, string> = new Map(), drainMaxPercent?: number) {
  const scripts: string[] = [];
  const log: Array<Record<string, unknown>> = [];
  const transportFor = async (node: ResolvedNode): Promise<Transport> => ({
    target: node.name,
    exec: async (script) => {
      scripts.push(script);
      const nodes = [...script.matchAll(/^drain '([^']+)'/gm)].map((m) => m[1]!);
      return { code: 0, stdout: nodes.map((n) => `drained ${n}\n`).join(''), stderr: '' };
    },
    readFile: async () => undefined,
    writeFile: async () => undefined,
    close: async () => undefined,
  });
  const store = { listRuns: async (q: { node?: string }) => [{ id: latest.get(q.node!) ?? `run-${q.node}` } as Run] };
  const sync = slurmHealthSync({
    inventory: () => inv,
    store,
    transportFor,
    timeoutMs: 1_000,
    ...(drainMaxPercent !== undefined ? { drainMaxPercent } : {}),
    log: createLogger('debug', { write: (line: string) => void log.push(JSON.parse(line) as Record<string, unknown>) }),
  });
  return { sync, scripts, log };
}

describe('slurmHealthSync', () => {
  it('drains the failing compute nodes through the controller', async () => {
    const { sync, scripts } = setup();
    await sync([report('gpu1', false), report('gpu2', true), report('head01', false)]);
    expect(scripts).toHaveLength(1);
    // The controller is no compute node: never drained by rackseed.
    expect([...scripts[0]!.matchAll(/^drain '([^']+)' '([^']+)'$/gm)].map((m) => [m[1], m[2]])).toEqual([['gpu1', 'rackseed readiness: base.hosts (broken)']]);
  });

  it('drains nothing when more than a quarter of the compute nodes fail in one run, and says why', async () => {
    const { sync, scripts, log } = setup();
    await sync(['gpu1', 'gpu2', 'gpu3'].map((n) => report(n, false)));
    expect(scripts).toEqual([]);
    expect(log.find((l) => l.level === 50)?.msg).toBe(
      "readiness failed on 3 of 8 Slurm compute nodes in one run (slurm.drain_max_percent allows 2): that looks cluster-wide, not the nodes' health; none drained",
    );
    await sync(['gpu1', 'gpu2'].map((n) => report(n, false)));
    expect(scripts).toHaveLength(1);
  });

  it.each([
    // [slurm.drain_max_percent, failing nodes, drained] of eight compute nodes.
    [50, 4, 4],
    [50, 5, 0],
    [100, 8, 8],
    [10, 1, 1], // at least one, even when the share rounds down to none
    [10, 2, 0],
  ])('slurm.drain_max_percent %i: %i of 8 failing, %i drained', async (percent, failing, drained) => {
    const { sync, scripts } = setup(new Map(), percent);
    await sync(Array.from({ length: failing }, (_, i) => report(`gpu${i + 1}`, false)));
    expect(scripts.flatMap((s) => [...s.matchAll(/^drain '([^']+)'/gm)].map((m) => m[1]))).toHaveLength(drained);
  });

  it('counts only new drains against the share: nodes Slurm shows drained already (awaiting repair) only get their reason updated', async () => {
    const { sync, scripts } = setup();
    const drained = (node: string): NodeReadinessReport => ({ ...report(node, false), evidence: [ev('base.hosts', false), { ...ev('slurm.node_state', true), seen: 'IDLE+DRAIN' }] });
    await sync([drained('gpu1'), drained('gpu2'), drained('gpu3'), report('gpu4', false)]);
    expect([...scripts[0]!.matchAll(/^drain '([^']+)'/gm)].map((m) => m[1])).toEqual(['gpu1', 'gpu2', 'gpu3', 'gpu4']);
  });

  it("skips a node whose newer readiness run has the last word (a fleet run's verdict is minutes old when it ends)", async () => {
    const { sync, scripts } = setup(new Map([['gpu1', 'a-newer-run']]));
    await sync([report('gpu1', false), report('gpu2', false)]);
    expect([...scripts[0]!.matchAll(/^drain '([^']+)'/gm)].map((m) => m[1])).toEqual(['gpu2']);
  });
});
