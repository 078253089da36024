import express, { Router } from 'express';
import { resolveTargets } from '../../inventory/index.js';
import { nodeLogger, type Logger } from '../../log.js';
import type { InventoryService } from '../../services/inventory-service.js';
import type { TransportFactory } from '../../services/node-transport.js';
import { EXEC_COMMAND_LIMIT, execOnNodes, type ExecOutcome } from '../../services/remote-exec.js';
import { badRequest } from './errors.js';
import { streamNdjson } from './ndjson.js';

export interface ExecRouteDeps {
  inventory: Pick<InventoryService, 'inventory'>;
  transportFor: TransportFactory;
  /** Nodes at once (states.concurrency) and the SSH connect timeout (states.connect_timeout_seconds). */
  concurrency: number;
  connectTimeoutMs: number;
  log: Logger;
}

export const EXEC_DEFAULT_TIMEOUT_SECONDS = 60;
export const EXEC_MAX_TIMEOUT_SECONDS = 24 * 3600;

export interface ExecSummary {
  type: 'summary';
  nodes: number;
  /** Ran and exited 0. */
  succeeded: number;
  /** Ran and exited non-zero. */
  exitNonZero: number;
  /** Could not be run or did not finish (unreachable, no pinned key, timed out). */
  notRun: number;
}

export type ExecLine = { type: 'start'; nodes: string[] } | { type: 'node'; outcome: ExecOutcome } | ExecSummary;

export function summarizeExec(outcomes: readonly ExecOutcome[]): ExecSummary {
  return {
    type: 'summary',
    nodes: outcomes.length,
    succeeded: outcomes.filter((o) => o.ran && o.code === 0).length,
    exitNonZero: outcomes.filter((o) => o.ran && o.code !== 0).length,
    notRun: outcomes.filter((o) => !o.ran).length,
  };
}

/**
 * POST /exec {targets, command, timeoutSeconds?}: the command on every targeted node at once, streamed as NDJSON
 * (a `node` line as each finishes, then the summary). Behind the admin token like every fleet verb; the command is
 * the operator's own shell text, run as root, and logged with its targets (the server log is the record of who
 * changed what outside the states).
 */
export function execRoutes(deps: ExecRouteDeps): Router {
  const r = Router();
  r.use(express.json({ limit: '1mb' }));
  r.post('/exec', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const unknown = Object.keys(body).filter((k) => !['targets', 'command', 'timeoutSeconds'].includes(k));
    if (unknown.length > 0) throw badRequest(`unknown key ${unknown.map((k) => JSON.stringify(k)).join(', ')} (expected: targets, command, timeoutSeconds)`);
    const { targets, command, timeoutSeconds } = body;
    if (!Array.isArray(targets) || targets.length === 0 || !targets.every((t): t is string => typeof t === 'string')) {
      throw badRequest('"targets" must be a non-empty list of node names, hostlists, group:NAME, role:NAME or key=value');
    }
    if (typeof command !== 'string' || command.trim() === '') throw badRequest('"command" must be a non-empty string of shell text');
    if (Buffer.byteLength(command) > EXEC_COMMAND_LIMIT) throw badRequest(`"command" is longer than ${EXEC_COMMAND_LIMIT} bytes: put it in a script (a file.managed state) and run that`);
    if (command.includes('\0')) throw badRequest('"command" must not contain NUL characters');
    const timeout = timeoutSeconds ?? EXEC_DEFAULT_TIMEOUT_SECONDS;
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > EXEC_MAX_TIMEOUT_SECONDS) {
      throw badRequest(`"timeoutSeconds" must be a whole number of seconds from 1 to ${EXEC_MAX_TIMEOUT_SECONDS}`);
    }
    const nodes = resolveTargets(deps.inventory.inventory, targets);
    deps.log.info({ targets, nodes: nodes.length, command, timeoutSeconds: timeout }, 'exec requested');
    await streamNdjson(res, deps.log, async (send) => {
      send({ type: 'start', nodes: nodes.map((n) => n.name) } satisfies ExecLine);
      const outcomes = await execOnNodes(nodes, command, { concurrency: deps.concurrency, timeoutMs: timeout * 1000, connectTimeoutMs: deps.connectTimeoutMs }, deps.transportFor, (outcome) => {
        const log = nodeLogger(deps.log, { name: outcome.node });
        if (outcome.ran) log.info({ code: outcome.code, durationMs: outcome.durationMs }, 'exec finished');
        else log.warn({ reason: outcome.error, code: outcome.errorCode }, 'exec could not run');
        send({ type: 'node', outcome } satisfies ExecLine);
      });
      return summarizeExec(outcomes);
    });
  });
  return r;
}
