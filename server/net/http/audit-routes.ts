import express, { Router } from 'express';
import { resolveTargets } from '../../inventory/index.js';
import type { Logger } from '../../log.js';
import { summarizeAudit, type AuditLine } from '../../services/audit-report.js';
import type { AuditService } from '../../services/audit-service.js';
import type { InventoryService } from '../../services/inventory-service.js';
import { badRequest } from './errors.js';
import { streamNdjson } from './ndjson.js';

export interface AuditRouteDeps {
  inventory: InventoryService;
  audit: AuditService;
  log: Logger;
}

/**
 * POST /audit {targets?}: dry-runs every target node's states and runs its readiness checks (`{}`: every node in
 * the inventory; a body that is not a JSON object is refused), NDJSON: a start line, one line per node as it finishes, then the summary.
 */
export function auditRoutes(deps: AuditRouteDeps): Router {
  const api = Router();
  api.use(express.json({ limit: '1mb' }));

  api.post('/audit', async (req, res) => {
    // A body that is not a JSON object (curl --data without a JSON content type, a bare list) must not read as
    // "no targets": that audited the whole fleet when one node was meant.
    if (!req.is('application/json') || typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
      throw badRequest('send a JSON object (Content-Type: application/json): {} audits every node, {"targets": [...]} the nodes named');
    }
    const targets = (req.body as { targets?: unknown }).targets;
    // An empty list is refused rather than read as "every node": a client whose selection came out empty must not
    // audit the whole fleet by accident (the other fleet routes refuse it too).
    if (targets !== undefined && (!Array.isArray(targets) || targets.length === 0 || !targets.every((t): t is string => typeof t === 'string'))) {
      throw badRequest('"targets" must be a non-empty list of node names, hostlist ranges, groups or label selectors (or left out for every node)');
    }
    const inv = deps.inventory.inventory;
    const nodes = targets ? resolveTargets(inv, targets) : [...inv.nodes.values()];
    await streamNdjson(res, deps.log, async (send) => {
      send({ type: 'start', nodes: nodes.map((n) => n.name) } satisfies AuditLine);
      const reports = await deps.audit.audit(nodes, (report) => send({ type: 'node', report } satisfies AuditLine));
      return summarizeAudit(reports);
    });
  });

  return api;
}
