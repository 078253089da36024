import express, { Router } from 'express';
import { resolveTargets } from '../../inventory/index.js';
import type { Logger } from '../../log.js';
import type { InventoryService } from '../../services/inventory-service.js';
import { readyNow, type NodeReadinessReport, type ReadinessService, type StoredReadiness } from '../../services/readiness-service.js';
import { badRequest } from './errors.js';
import { streamNdjson } from './ndjson.js';

export interface ReadinessRouteDeps {
  inventory: InventoryService;
  readiness: ReadinessService;
  log: Logger;
}

/** Last NDJSON line of a readiness run. */
export interface ReadinessRunSummary {
  type: 'summary';
  nodes: number;
  /** Nodes whose checks all passed and whose lifecycle is ready (readyNow). */
  readyNodes: number;
  notReadyNodes: string[];
  /** Failing check name -> how many nodes failed it. */
  failingChecks: Record<string, number>;
}

export type ReadinessRunLine = { type: 'start'; nodes: string[] } | { type: 'node'; report: NodeReadinessReport } | ReadinessRunSummary;

export function summarizeReadiness(reports: readonly NodeReadinessReport[]): ReadinessRunSummary {
  const failingChecks: Record<string, number> = {};
  for (const r of reports) for (const c of new Set(r.failing)) failingChecks[c] = (failingChecks[c] ?? 0) + 1;
  return {
    type: 'summary',
    nodes: reports.length,
    readyNodes: reports.filter(readyNow).length,
    notReadyNodes: reports.filter((r) => !readyNow(r)).map((r) => r.node),
    failingChecks,
  };
}

/** Splits 'gpu[01,03],head01' at the commas outside brackets (a hostlist keeps its own commas). */
export function splitTargets(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let word = '';
  for (const ch of text) {
    if (ch === '[') depth++;
    else if (ch === ']') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      out.push(word);
      word = '';
    } else word += ch;
  }
  out.push(word);
  // Empty pieces stay: `?targets=` or `a,` is a mistake (an empty shell variable) that resolveTargets names, as the
  // POST verbs do, not a request for every node.
  return out.map((t) => t.trim());
}

/** ?targets=a,b (the app refuses a repeated parameter, so there is one string). */
function targetList(raw: unknown): string[] | undefined {
  if (raw === undefined) return undefined;
  return (Array.isArray(raw) ? raw : [raw]).flatMap((t) => (typeof t === 'string' ? splitTargets(t) : []));
}

/**
 * POST /readiness/run {targets}: runs the checks now, NDJSON per node then a summary.
 * GET /readiness?targets=a,b: the last stored readiness run per node (every node without targets); runs nothing.
 */
export function readinessRoutes(deps: ReadinessRouteDeps): Router {
  const api = Router();
  api.use(express.json({ limit: '1mb' }));

  api.post('/readiness/run', async (req, res) => {
    const targets = (req.body as { targets?: unknown } | undefined)?.targets;
    if (!Array.isArray(targets) || targets.length === 0 || !targets.every((t): t is string => typeof t === 'string')) {
      throw badRequest('"targets" must be a non-empty list of node names, hostlist ranges, groups or label selectors');
    }
    const nodes = resolveTargets(deps.inventory.inventory, targets);
    await streamNdjson(res, deps.log, async (send) => {
      send({ type: 'start', nodes: nodes.map((n) => n.name) } satisfies ReadinessRunLine);
      const reports = await deps.readiness.run(nodes, (report) => send({ type: 'node', report } satisfies ReadinessRunLine));
      return summarizeReadiness(reports);
    });
  });

  api.get('/readiness', async (req, res) => {
    const raw = req.query.targets;
    if (raw !== undefined && typeof raw !== 'string' && !Array.isArray(raw)) throw badRequest('"targets" must be a comma-separated list');
    const targets = targetList(raw);
    const inv = deps.inventory.inventory;
    const nodes = targets ? resolveTargets(inv, targets) : [...inv.nodes.values()];
    const result: { nodes: StoredReadiness[] } = { nodes: await deps.readiness.last(nodes) };
    res.json(result);
  });

  return api;
}
