import { setTimeout as sleep } from 'node:timers/promises';
import express, { Router } from 'express';
import { resolveTargets } from '../../inventory/index.js';
import type { Logger } from '../../log.js';
import type { Inventory } from '../../model/inventory.js';
import type { LifecycleState } from '../../model/lifecycle.js';
import type { ConvergeRequestOutcome, ConvergenceService } from '../../services/convergence.js';
import type { ObservedStore } from '../../store/types.js';
import { badRequest } from './errors.js';
import { streamNdjson } from './ndjson.js';

export interface ConvergeRouteDeps {
  inventory: { readonly inventory: Inventory };
  convergence: Pick<ConvergenceService, 'request' | 'isBusy'>;
  store: Pick<ObservedStore, 'getNode'>;
  log: Logger;
  /** How often a waiting request looks whether its nodes are done. */
  pollMs?: number;
}

export type ConvergeLine =
  | { type: 'requested'; node: string; status: ConvergeRequestOutcome['status']; message?: string }
  | { type: 'node'; node: string; state?: LifecycleState; stage?: string; reason?: string }
  | ConvergeSummary;

export interface ConvergeSummary {
  type: 'summary';
  nodes: number;
  /** Nodes whose convergence was queued or joined one under way. */
  queued: number;
  /** Nodes it was refused for (still provisioning, install failed, no pinned key, ...). */
  refused: string[];
  /** With wait: the queued nodes that ended ready, and those that did not. */
  ready?: number;
  notReady?: string[];
}

/**
 * POST /converge {targets, wait?}: an operator's convergence of these nodes, the same one that runs after an install
 * (states, then readiness): the way back for a node whose states failed, once the cause is fixed. NDJSON: one
 * `requested` line per node, then, with `wait`, one `node` line per queued node as its convergence ends, then the
 * summary.
 */
export function convergeRoutes(deps: ConvergeRouteDeps): Router {
  const api = Router();
  api.use(express.json({ limit: '1mb' }));
  const pollMs = deps.pollMs ?? 500;

  api.post('/converge', async (req, res) => {
    const body = (req.body ?? {}) as { targets?: unknown; wait?: unknown };
    if (!Array.isArray(body.targets) || body.targets.length === 0 || !body.targets.every((t): t is string => typeof t === 'string')) {
      throw badRequest('"targets" must be a non-empty list of node names, hostlist ranges, groups or label selectors');
    }
    if (body.wait !== undefined && typeof body.wait !== 'boolean') throw badRequest('"wait" must be true or false');
    const nodes = resolveTargets(deps.inventory.inventory, body.targets);
    await streamNdjson(res, deps.log, async (send) => {
      const queued: string[] = [];
      const refused: string[] = [];
      for (const node of nodes) {
        const r = await deps.convergence.request(node.name, 'operator');
        const ok = r.status === 'queued' || r.status === 'coalesced';
        (ok ? queued : refused).push(node.name);
        send({ type: 'requested', node: node.name, status: r.status, ...('message' in r ? { message: r.message } : {}) } satisfies ConvergeLine);
      }
      const summary: ConvergeSummary = { type: 'summary', nodes: nodes.length, queued: queued.length, refused };
      if (body.wait !== true) return summary;
      const notReady: string[] = [];
      let pending = queued;
      while (pending.length > 0 && !res.destroyed) {
        const done = pending.filter((name) => !deps.convergence.isBusy(name));
        for (const name of done) {
          const status = await deps.store.getNode(name);
          if (status?.state !== 'ready') notReady.push(name);
          send({ type: 'node', node: name, ...(status ? { state: status.state } : {}), ...(status?.stage ? { stage: status.stage } : {}), ...(status?.reason ? { reason: status.reason } : {}) } satisfies ConvergeLine);
        }
        pending = pending.filter((name) => !done.includes(name));
        if (pending.length > 0) await sleep(pollMs);
      }
      return { ...summary, ready: queued.length - notReady.length - pending.length, notReady: [...notReady, ...pending] };
    });
  });

  return api;
}
