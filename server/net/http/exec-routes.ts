import { setMaxListeners } from 'node:events';
import express, { Router, type Response } from 'express';
import { resolveTargets } from '../../inventory/index.js';
import { nodeLogger, type Logger } from '../../log.js';
import type { InventoryService } from '../../services/inventory-service.js';
import type { TransportFactory } from '../../services/node-transport.js';
import { EXEC_COMMAND_LIMIT, execOnNodes, type ExecCounts, type ExecOutcome } from '../../services/remote-exec.js';
import { badRequest } from './errors.js';
import { streamNdjson } from './ndjson.js';

export interface ExecRouteDeps {
  inventory: Pick<InventoryService, 'inventory'>;
  transportFor: TransportFactory;
  /** Nodes at once (states.concurrency) and the SSH connect timeout (states.connect_timeout_seconds). */
  concurrency: number;
  connectTimeoutMs: number;
  /** How long a node's answer may wait for the client to read (EXEC_DRAIN_TIMEOUT_MS); made short in tests. */
  drainTimeoutMs?: number;
  log: Logger;
}

/**
 * A client that stays connected but stops reading holds every lane at its answer (deliberately: the answers must not
 * pile up in the server's memory); past this the exec is cancelled as if the client had gone, rather than stalled
 * with its commands running on the nodes forever.
 */
export const EXEC_DRAIN_TIMEOUT_MS = 60_000;

export const EXEC_DEFAULT_TIMEOUT_SECONDS = 60;
export const EXEC_MAX_TIMEOUT_SECONDS = 24 * 3600;

export type ExecSummary = { type: 'summary' } & ExecCounts;

export type ExecLine = { type: 'start'; nodes: string[] } | { type: 'node'; outcome: ExecOutcome } | ExecSummary;

/**
 * POST /exec {targets, command, timeoutSeconds?}: the command on every targeted node at once, streamed as NDJSON
 * (a `node` line as each finishes, then the summary). Behind the admin token like every fleet verb; the command is
 * the operator's own shell text, run as root, and logged with its targets (the server log is the record of who
 * changed what outside the states). A client that goes away (Ctrl-C) cancels it: no further node starts, and the
 * commands running are killed, rather than running on every node until the timeout with no one to read them. So does
 * a client that stays connected but leaves an answer unread for drainTimeoutMs (then its connection is closed too).
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
    const drainTimeoutMs = deps.drainTimeoutMs ?? EXEC_DRAIN_TIMEOUT_MS;
    const cancel = new AbortController();
    // Every running node's transport listens on this one signal, and every lane waiting for a slow client on `res`:
    // as many listeners as nodes at once, which is expected, not a leak.
    setMaxListeners(deps.concurrency + 10, cancel.signal);
    res.setMaxListeners(deps.concurrency + 10);
    // 'close' before the answer ended: the client is gone (the CLI's Ctrl-C, a dropped connection).
    const onClose = (): void => {
      if (!res.writableEnded) cancel.abort();
    };
    res.on('close', onClose);
    try {
      await streamNdjson(res, deps.log, async (send) => {
        send({ type: 'start', nodes: nodes.map((n) => n.name) } satisfies ExecLine);
        const options = { concurrency: deps.concurrency, timeoutMs: timeout * 1000, connectTimeoutMs: deps.connectTimeoutMs, signal: cancel.signal };
        const counts = await execOnNodes(nodes, command, options, deps.transportFor, async (outcome) => {
          const log = nodeLogger(deps.log, { name: outcome.node });
          if (outcome.ran) log.info({ code: outcome.code, durationMs: outcome.durationMs }, 'exec finished');
          else log.warn({ reason: outcome.error, code: outcome.errorCode }, outcome.timedOut ? 'exec timed out' : 'exec could not run or finish');
          // A client reading slowly holds this node's lane until it has taken the line, so answers do not pile up here.
          if (send({ type: 'node', outcome } satisfies ExecLine) || (await drained(res, drainTimeoutMs))) return;
          // Connected, but not reading: treated as gone. Cancelled here, not by the close that follows the destroy: that
          // comes a turn later, and meanwhile the lanes (whose sends now fail at once) would start further nodes.
          if (cancel.signal.aborted) return;
          deps.log.warn({ targets, command, node: outcome.node, drainTimeoutMs }, 'exec cancelled: the client stopped reading its answers');
          cancel.abort();
          res.destroy();
        });
        if (cancel.signal.aborted) deps.log.warn({ targets, command, ...counts }, 'exec cancelled: the client went away; no further node started, running commands killed');
        return { type: 'summary', ...counts } satisfies ExecSummary;
      });
    } finally {
      res.off('close', onClose);
    }
  });
  return r;
}

/**
 * Until the response's buffered data has gone out, or the connection is gone (true), or `ms` passed first (false:
 * the client is not reading).
 */
function drained(res: Response, ms: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const done = (went: boolean): void => {
      clearTimeout(timer);
      res.off('drain', onDrain);
      res.off('close', onDrain);
      resolve(went);
    };
    const onDrain = (): void => done(true);
    const timer = setTimeout(() => done(false), ms);
    res.on('drain', onDrain);
    res.on('close', onDrain);
    if (res.destroyed || res.writableEnded) done(true);
  });
}
