import express, { Router } from 'express';
import { RackseedError } from '../../model/errors.js';
import { resolveTargets } from '../../inventory/index.js';
import type { Logger } from '../../log.js';
import type { InventoryService } from '../../services/inventory-service.js';
import type { NodeRunReport, StateService } from '../../services/state-service.js';
import type { ObservedStore, RunKind } from '../../store/types.js';
import { badRequest } from './errors.js';
import { splitTargets } from './readiness-routes.js';
import { streamNdjson } from './ndjson.js';

export interface StateRouteDeps {
  inventory: InventoryService;
  store: ObservedStore;
  states: StateService;
  log: Logger;
}

/** Summary line of a fleet state run: the last NDJSON line. */
export interface StateRunSummary {
  type: 'summary';
  mode: 'apply' | 'test';
  nodes: number;
  failedNodes: number;
  changedNodes: number;
  states: { changed: number; unchanged: number; failed: number; wouldChange: number };
}

export type StateRunLine = { type: 'start'; mode: 'apply' | 'test'; nodes: string[] } | { type: 'node'; report: NodeRunReport } | StateRunSummary;

const RUN_KINDS: readonly RunKind[] = ['apply', 'test', 'readiness', 'audit', 'install'];

export function summarize(mode: 'apply' | 'test', reports: readonly NodeRunReport[]): StateRunSummary {
  const states = { changed: 0, unchanged: 0, failed: 0, wouldChange: 0 };
  for (const r of reports) {
    states.changed += r.counts.changed;
    states.unchanged += r.counts.unchanged;
    states.failed += r.counts.failed;
    states.wouldChange += r.counts.wouldChange;
  }
  return {
    type: 'summary',
    mode,
    nodes: reports.length,
    failedNodes: reports.filter((r) => r.result === 'failed').length,
    changedNodes: reports.filter((r) => r.result === 'changed').length,
    states,
  };
}

/** State runs (apply / test) over the admin API, streamed per node, and the stored runs. */
export function stateRoutes(deps: StateRouteDeps): Router {
  const api = Router();
  api.use(express.json({ limit: '1mb' }));

  api.post('/states/run', async (req, res) => {
    const body = req.body as { targets?: unknown; mode?: unknown } | undefined;
    const targets = body?.targets;
    if (!Array.isArray(targets) || targets.length === 0 || !targets.every((t): t is string => typeof t === 'string')) {
      throw badRequest('"targets" must be a non-empty list of node names, hostlist ranges, groups or label selectors');
    }
    if (body?.mode !== 'apply' && body?.mode !== 'test') throw badRequest('"mode" must be "apply" or "test"');
    const mode = body.mode;
    const nodes = resolveTargets(deps.inventory.inventory, targets);
    await streamNdjson(res, deps.log, async (send) => {
      send({ type: 'start', mode, nodes: nodes.map((n) => n.name) } satisfies StateRunLine);
      const reports = await deps.states.run(nodes, mode, (report) => send({ type: 'node', report } satisfies StateRunLine));
      return summarize(mode, reports);
    });
  });

  api.get('/runs', async (req, res) => {
    const node = typeof req.query.node === 'string' ? req.query.node : undefined;
    // ?targets=gpu[01-04],group:head as the fleet verbs take them, resolved against the inventory; `node` stays a
    // plain name, which also reaches the runs of a node no longer in the inventory.
    const targets = typeof req.query.targets === 'string' ? splitTargets(req.query.targets) : undefined;
    if (targets && node !== undefined) throw badRequest('give "node" or "targets", not both');
    const nodes = targets ? resolveTargets(deps.inventory.inventory, targets).map((n) => n.name) : undefined;
    const kind = typeof req.query.kind === 'string' ? req.query.kind : undefined;
    if (kind !== undefined && !RUN_KINDS.includes(kind as RunKind)) throw badRequest(`"kind" must be one of ${RUN_KINDS.join(', ')}`);
    // Digits only, as /events takes it: Number() also read "0x10", "1e2" and " 5 ".
    const limitRaw = typeof req.query.limit === 'string' ? (/^\d+$/.test(req.query.limit) ? Number(req.query.limit) : NaN) : 50;
    if (!Number.isSafeInteger(limitRaw) || limitRaw < 1 || limitRaw > 1000) throw badRequest('"limit" must be a whole number from 1 to 1000');
    const runs = await deps.store.listRuns({ ...(node ? { node } : {}), ...(nodes ? { nodes } : {}), ...(kind ? { kind: kind as RunKind } : {}), limit: limitRaw });
    res.json({ runs });
  });

  api.get('/runs/:id', async (req, res) => {
    const run = await deps.store.getRun(req.params.id);
    if (!run) throw new RackseedError('NOT_FOUND', `no run "${req.params.id}"`);
    res.json({ run });
  });

  return api;
}
