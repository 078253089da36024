import { isRackseedError } from '../model/errors.js';
import type { Transport } from '../state/types.js';
import { checksForNode } from './roles/index.js';
import type { CheckContext, CheckSpec, Evidence, RoleChecks, Verdict } from './types.js';

/**
 * The readiness engine: for each role's checks, one exec of the collection command (with a timeout), then the
 * pure evaluation. A command that cannot run (timeout, dropped connection) becomes failing evidence for that
 * check; it never hides the other checks' results.
 */

export interface CollectOptions {
  /** Per-command timeout: every check's limit, and the cap on a check's own smaller limit. */
  timeoutMs?: number;
}

export const DEFAULT_CHECK_TIMEOUT_MS = 30_000;

async function runCheck(spec: CheckSpec, ctx: CheckContext, transport: Transport, timeoutMs: number): Promise<Evidence[]> {
  let output;
  try {
    // A check's own limit bounds a tool known to hang (nvidia-smi when a GPU fell off the bus); the operator's
    // limit is never exceeded, so a smaller command timeout still holds for every check.
    output = await transport.exec(spec.command(ctx), { timeoutMs: Math.min(spec.timeoutMs ?? timeoutMs, timeoutMs) });
  } catch (err) {
    const code = isRackseedError(err) ? err.code : 'INTERNAL';
    const message = err instanceof Error ? err.message : String(err);
    return [{ check: spec.id, role: spec.role, expected: 'collection command runs', seen: code, pass: false, reason: `${spec.id}: ${message}`, notRun: true }];
  }
  try {
    const evidence = spec.evaluate(output, ctx);
    return evidence.length > 0 ? evidence : [{ check: spec.id, role: spec.role, expected: '-', seen: 'nothing to check', pass: true }];
  } catch (err) {
    // Evaluations are written not to throw; if one does, that is a failed check, not a crashed run.
    return [{ check: spec.id, role: spec.role, expected: '-', seen: 'evaluation error', pass: false, reason: `${spec.id}: ${err instanceof Error ? err.message : String(err)}` }];
  }
}

/**
 * Runs every check of every role in `roles` (default: the roles checksForNode derives from the context) over one
 * connected transport, in order, and returns all evidence.
 */
export async function collectEvidence(ctx: CheckContext, transport: Transport, options: CollectOptions = {}, roles: readonly RoleChecks[] = checksForNode(ctx)): Promise<Evidence[]> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const evidence: Evidence[] = [];
  for (const role of roles) {
    evidence.push(...(role.static ?? []));
    for (const spec of role.checks) evidence.push(...(await runCheck(spec, ctx, transport, timeoutMs)));
  }
  return evidence;
}

/** One failing check for a summary line: 'nvidia.memory (GPU 0 ... has 12288 MiB ...)'. */
function describeFailure(e: Evidence, maxReason: number): string {
  const reason = e.reason ?? `expected ${e.expected}, saw ${e.seen}`;
  return `${e.check} (${reason.length > maxReason ? `${reason.slice(0, maxReason - 1)}…` : reason})`;
}

/** PURE: ready only when there is evidence and all of it passes. */
export function verdict(evidence: readonly Evidence[]): Verdict {
  const failing = evidence.filter((e) => !e.pass);
  if (evidence.length === 0) return { ready: false, failing: [], summary: 'readiness: no evidence collected' };
  if (failing.length === 0) return { ready: true, failing: [], summary: '' };
  return { ready: false, failing, summary: `readiness: ${failing.map((e) => describeFailure(e, 160)).join('; ')}` };
}
