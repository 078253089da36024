import express, { Router, type Request } from 'express';
import type { CallbackTokens } from '../../auth/callback-token.js';
import { stillNamesMachine, type NodeTokenClaims, type NodeTokens } from '../../auth/node-token.js';
import { IMAGE_NAME, SHA256_HEX } from '../../model/image.js';
import { isPostInstallStage, WIPE_MODES, type InstalledImage, type LifecycleEvent, type SkippedDevice, type WipedDisk, type WipeMode } from '../../model/lifecycle.js';
import { nodeLogger, type Logger } from '../../log.js';
import type { ConvergeRequestOutcome } from '../../services/convergence.js';
import type { ObservedStore } from '../../store/types.js';
import { oneLineFromNode } from '../../util/printable.js';
import { errorBody } from './errors.js';
import { remoteOf } from './remote.js';
import { planFetchKey, planHandler, type PlanRouteDeps } from './plan-route.js';

/** A failure reason as stored and shown: one line of at most this many characters. */
const MAX_REASON_CHARS = 500;
/** Ends a reason that was cut, so nobody reads the part kept for the whole (a wipe's list of failed disks). */
const CUT_MARK = ' [...]';
const MAX_DETAIL_TEXT = 200;

/** How deep and how wide a stage detail is kept: the installer sends flat numbers and short messages. */
const MAX_DETAIL_DEPTH = 3;
const MAX_DETAIL_ENTRIES = 32;

/** The installer's failure text as one printable line, cut to MAX_REASON_CHARS with a mark where it was cut. */
function failureReason(text: string): string {
  const line = oneLineFromNode(text, Number.MAX_SAFE_INTEGER);
  const chars = Array.from(line);
  return chars.length > MAX_REASON_CHARS ? `${chars.slice(0, MAX_REASON_CHARS - CUT_MARK.length).join('')}${CUT_MARK}` : line;
}

/**
 * A stage's detail (bytes, rate, peers, a message) as stored: every string, at any depth, one clean line; nesting
 * and entries bounded (deeper values are dropped), so a node cannot store terminal escapes, lone surrogates or 64 KB
 * of text under a nested key.
 */
function nodeDetail(detail: Record<string, unknown>, depth = 1): Record<string, unknown> {
  const entries = Object.entries(detail).slice(0, MAX_DETAIL_ENTRIES);
  return Object.fromEntries(entries.flatMap(([key, value]) => {
    const clean = nodeValue(value, depth);
    return clean === undefined ? [] : [[oneLineFromNode(key, 64), clean]];
  }));
}

function nodeValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return oneLineFromNode(value, MAX_DETAIL_TEXT);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  if (depth >= MAX_DETAIL_DEPTH || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) return value.slice(0, MAX_DETAIL_ENTRIES).map((v) => nodeValue(v, depth + 1) ?? null);
  return nodeDetail(value as Record<string, unknown>, depth + 1);
}

export interface NodeRouteDeps {
  tokens: NodeTokens;
  store: ObservedStore;
  log: Logger;
  /** Serves GET /node/v1/plan when given. */
  plan?: PlanRouteDeps;
  /** Serves POST /node/v1/booted when given. */
  booted?: BootedRouteDeps;
}

export interface BootedRouteDeps {
  /** The installed node's callback tokens (purpose `booted`), not the installer's node tokens. */
  callbackTokens: CallbackTokens;
  /** Starts (or joins) the node's convergence. */
  converge(node: string): Promise<ConvergeRequestOutcome>;
}

/** HTTP status per convergence request outcome: only "queued" and "joined" mean the call did its job. */
const BOOTED_STATUS: Record<ConvergeRequestOutcome['status'], number> = {
  queued: 202,
  coalesced: 202,
  // Nothing to retry for: the operator converges by hand on this server.
  disabled: 202,
  'not-started': 503,
  closed: 503,
  'unknown-node': 404,
  'not-installed': 409,
  unreachable: 409,
};

const STAGE = /^[a-z][a-z0-9-]{0,31}$/;

/** The image an installed report names: undefined when it names none (an older installer), null when malformed. */
function installedImage(value: unknown): InstalledImage | undefined | null {
  if (value === undefined) return undefined;
  if (!value || typeof value !== 'object' || Array.isArray(value)) return null;
  const { name, sha256 } = value as Record<string, unknown>;
  return typeof name === 'string' && IMAGE_NAME.test(name) && typeof sha256 === 'string' && SHA256_HEX.test(sha256) ? { name, sha256 } : null;
}

/** A kernel block device name (cciss!c0d0 included). */
const DISK_NAME = /^[a-z][a-z0-9_.!-]{0,31}$/;
/** The body's 64 KiB limit bounds a report first; this only refuses what no machine has. */
const MAX_WIPED_DISKS = 4096;
const MAX_IDENTITY_CHARS = 128;

/** An optional identity field of a wiped disk, as stored: one clean line, or absent when empty or not text. */
function identity(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = oneLineFromNode(value, MAX_IDENTITY_CHARS).trim();
  return text === '' ? undefined : text;
}

/** What a wiped report says was erased, or null when malformed: its mode, at least one disk, what was left alone. */
function wipedReport(value: unknown): { mode: WipeMode; disks: WipedDisk[]; skipped?: SkippedDevice[] } | null {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return null;
  const { mode, disks, skipped } = value as Record<string, unknown>;
  if (typeof mode !== 'string' || !(WIPE_MODES as readonly string[]).includes(mode)) return null;
  if (!Array.isArray(disks) || disks.length === 0 || disks.length > MAX_WIPED_DISKS) return null;
  const parsed: WipedDisk[] = [];
  for (const d of disks) {
    const { name, bytes, model, serial, wwid } = (d ?? {}) as Record<string, unknown>;
    if (typeof name !== 'string' || !DISK_NAME.test(name) || typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) return null;
    const ids = { model: identity(model), serial: identity(serial), wwid: identity(wwid) };
    parsed.push({ name, bytes, ...Object.fromEntries(Object.entries(ids).filter(([, v]) => v !== undefined)) });
  }
  if (skipped !== undefined && (!Array.isArray(skipped) || skipped.length > MAX_WIPED_DISKS)) return null;
  const left: SkippedDevice[] = [];
  for (const d of skipped ?? []) {
    const { name, why } = (d ?? {}) as Record<string, unknown>;
    if (typeof name !== 'string' || !DISK_NAME.test(name) || typeof why !== 'string') return null;
    left.push({ name, why: oneLineFromNode(why, 64) });
  }
  return { mode: mode as WipeMode, disks: parsed, ...(left.length > 0 ? { skipped: left } : {}) };
}

function bearer(req: Request): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
}

/**
 * What runs on a node talks to these routes with its own node token (never the admin token): it can speak
 * only for itself. A report is one of: a stage reached ({"stage":"download","detail":{...}}), a failure
 * ({"failed":"reason","stage":"verify"}), or the end of the install ({"installed":true,"image":{"name":..,"sha256":..}},
 * naming the image it verified and unpacked), or the end of a wipe ({"wiped":{"mode":"quick","disks":[{"name":"sda",
 * "bytes":N}]}}, the disks it erased and checked).
 */
export function nodeRoutes(deps: NodeRouteDeps): Router {
  const router = Router();
  // The token first, then the body: a client without a valid token learns nothing from how its body parses.
  router.post('/report', (req, res, next) => {
    const claims = deps.tokens.verify(bearer(req) ?? '');
    if (!claims) {
      res.status(401).json(errorBody('UNAUTHORIZED', 'missing, invalid or expired node token'));
      return;
    }
    // The plan's inventory: the server always serves plans; a test without them has no inventory to check against.
    const inventory = deps.plan?.inventory.inventory;
    if (inventory && !stillNamesMachine(claims, inventory)) {
      // The node was removed since, or the name is another machine's now: the old machine speaks for nothing.
      nodeLogger(deps.log, { name: claims.node, mac: claims.mac }).warn('node report refused: its token was issued to a machine the inventory no longer sends to this node');
      res.status(401).json(errorBody('UNAUTHORIZED', `this token was issued to machine ${claims.mac}, which the inventory no longer declares as ${claims.node}`));
      return;
    }
    res.locals.nodeClaims = claims;
    next();
  });
  if (deps.plan) {
    const plan = planHandler(deps.plan);
    // Express answers HEAD through GET routes: a HEAD would spend the single-use token without delivering the plan.
    router.get('/plan', (req, res, next) => (req.method === 'HEAD' ? res.status(405).set('allow', 'GET').end() : plan(req, res, next)));
  }

  // Only /report has a body; /booted has none, and no path parses a body before its token is checked.
  router.post('/report', express.json({ limit: '64kb' }), async (req, res) => {
    const claims = res.locals.nodeClaims as NodeTokenClaims;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const detail = body.detail && typeof body.detail === 'object' && !Array.isArray(body.detail) ? nodeDetail(body.detail as Record<string, unknown>) : undefined;
    let event: LifecycleEvent;
    if (typeof body.failed === 'string' && body.failed.length > 0) {
      // The installer's failure always names an installer stage: the post-install names would let a failed install
      // pass for a configured node whose disk may be booted.
      const stage = typeof body.stage === 'string' && STAGE.test(body.stage) && !isPostInstallStage(body.stage) ? body.stage : 'install';
      event = { type: 'failed', reason: failureReason(body.failed), stage };
    } else if (body.installed === true) {
      const image = installedImage(body.image);
      if (image === null) {
        res.status(400).json(errorBody('BAD_REQUEST', 'image must be {"name":"<image name>","sha256":"<64 hex digits>"}: the image the install verified and unpacked'));
        return;
      }
      event = { type: 'installed', ...(image ? { image } : {}) };
    } else if (body.wiped !== undefined) {
      const wiped = wipedReport(body.wiped);
      if (!wiped) {
        res.status(400).json(errorBody('BAD_REQUEST', `wiped must be {"mode":"${WIPE_MODES.join('|')}","disks":[{"name":"sda","bytes":N,"model"?,"serial"?,"wwid"?}, ...],"skipped"?:[{"name","why"}]} with 1 to ${MAX_WIPED_DISKS} disks: what the wipe erased`));
        return;
      }
      // Only the installer that ran the wipe: a token that fetched the wipe plan, or the report token that plan gave.
      // A token fresh from a boot script (anyone on the boot network can ask for one by MAC) cannot mark a machine
      // erased without at least asking for its plan, which is recorded. Checking spends an unused token's plan fetch.
      if (await deps.store.useOnce(planFetchKey(claims.node, claims.nonce), claims.expiresAt)) {
        nodeLogger(deps.log, { name: claims.node }).warn({ remote: remoteOf(req) }, 'wiped report refused: its token never fetched a wipe plan');
        res.status(409).json(errorBody('LIFECYCLE_INVALID_TRANSITION', 'a wiped report is taken only with the token that fetched the wipe plan, or the report token that plan gave'));
        return;
      }
      event = { type: 'wiped', ...wiped, remote: remoteOf(req) };
    } else if (typeof body.stage === 'string' && STAGE.test(body.stage)) {
      event = { type: 'stage', stage: body.stage, ...(detail ? { detail } : {}) };
    } else {
      res.status(400).json(errorBody('BAD_REQUEST', 'expected {"stage":"name"}, {"failed":"reason"}, {"installed":true,"image":{"name":"..","sha256":".."}} or {"wiped":{"mode":"..","disks":[..]}}'));
      return;
    }
    const log = nodeLogger(deps.log, { name: claims.node });
    // In full DHCP mode, as for the plan: the report token travels in a boot script anyone on the boot network can ask
    // for by MAC, and a report from another machine could mark the node installed or failed.
    const addressOf = deps.plan?.addressOf;
    const node = deps.plan?.inventory.inventory.nodes.get(claims.node);
    if (addressOf && node) {
      const expected = await addressOf(node, (await deps.store.getNode(node.name))?.mac);
      const remote = remoteOf(req);
      if (expected === undefined || remote !== expected) {
        log.warn({ remote, expected: expected ?? 'none', event: event.type }, 'node report refused: not from the node\'s address');
        res.status(403).json(errorBody('UNAUTHORIZED', `reports for ${node.name} are taken only from its own address`));
        return;
      }
    }
    const r = await deps.store.recordEvent({ node: claims.node, event });
    if (!r.ok) {
      log.warn({ event, error: r.error }, 'node report refused');
      res.status(409).json(errorBody('LIFECYCLE_INVALID_TRANSITION', r.error));
      return;
    }
    log.info({ event }, 'node report');
    res.status(204).end();
  });

  /**
   * POST /node/v1/booted: the installed node's first-boot unit saying "I am up in my OS". It only asks for the
   * node's convergence, which verifies the node through its pinned SSH host key; the token proves nothing more.
   */
  if (deps.booted) {
    const booted = deps.booted;
    router.post('/booted', async (req, res) => {
      const claims = booted.callbackTokens.verify(bearer(req) ?? '', 'booted');
      if (!claims) {
        res.status(401).json(errorBody('UNAUTHORIZED', 'missing or invalid callback token'));
        return;
      }
      const outcome = await booted.converge(claims.node);
      const log = nodeLogger(deps.log, { name: claims.node });
      log.info({ outcome: outcome.status, remote: remoteOf(req) }, 'node booted its OS');
      res.status(BOOTED_STATUS[outcome.status]).json({ node: claims.node, convergence: outcome.status, ...('message' in outcome ? { message: outcome.message } : {}) });
    });
  }

  return router;
}
