import { isRackseedError } from '../model/errors.js';
import type { ResolvedNode } from '../model/inventory.js';
import { capText, partialOutputOf } from '../state/transport/capped-output.js';
import type { Transport } from '../state/types.js';
import { withoutTarget, type TransportFactory } from './node-transport.js';

/**
 * `rackseed exec`: one shell command on many nodes at once, as pdsh or clush do, over the same SSH the states use
 * (root, the server's key, each node's pinned host key: a node rackseed did not provision is refused, never trusted
 * on first use). Each node gets its own answer; a node that cannot be reached or does not finish in time fails alone.
 */

/**
 * Per stream and node: a command that prints a lot on 10,000 nodes must not fill the server's memory. The transport
 * keeps no more than this (the rest is counted, never held), and an answer is handed on as soon as its node
 * finishes and then let go: what the server holds is this much for each node running at once.
 */
export const EXEC_OUTPUT_LIMIT = 64 * 1024;
/** Longer shell text belongs in a script the states put on the nodes. */
export const EXEC_COMMAND_LIMIT = 64 * 1024;
/**
 * The backstop's margin over the command's and the connection's own limits: a timed-out node's close() waits up to
 * ~9.4 s for the kill to reach it (ssh.ts KILL_WAIT_MS), and that node must be reported as timed out, not abandoned.
 */
const BACKSTOP_GRACE_MS = 20_000;

export interface ExecOutcome {
  node: string;
  /** The command ran; `code` is its exit status. False: it could not be run or did not finish (`error`). */
  ran: boolean;
  code?: number;
  /** For a node that timed out or was cancelled, what the command printed until it was killed. */
  stdout: string;
  stderr: string;
  /** stdout or stderr was cut at EXEC_OUTPUT_LIMIT bytes. */
  truncated?: true;
  /** The command ran past the timeout and was killed (its process group); `error` says after how long. */
  timedOut?: true;
  /** Why the command did not run or finish: no pinned host key, SSH refused, timed out (then it was killed). */
  error?: string;
  errorCode?: string;
  durationMs: number;
}

/** What happened on the nodes, counted as their answers go by (the answers themselves are not kept). */
export interface ExecCounts {
  nodes: number;
  /** Ran and exited 0. */
  succeeded: number;
  /** Ran and exited non-zero. */
  exitNonZero: number;
  /** Did not run or did not finish: unreachable, no pinned key, timed out (killed), cancelled, never started. */
  unfinished: number;
}

export interface ExecOptions {
  concurrency: number;
  /** For the command on each node; then it is killed (its process group) and the node fails with a timeout. */
  timeoutMs: number;
  /** For the SSH connection, on top of timeoutMs in the backstop deadline. */
  connectTimeoutMs: number;
  /** Added to both for the backstop, after which a node whose transport never answered is abandoned. */
  graceMs?: number;
  /** Aborted (the client went away): no further node is started, the commands running are killed, connects under way closed. */
  signal?: AbortSignal;
}

/**
 * Runs `command` on every node, `concurrency` at once, and hands each node's outcome to `onOutcome` as the node
 * finishes. A promise from `onOutcome` (a client reading slowly) holds that lane: no other node starts until it
 * settles, so answers waiting to be sent stay bounded too. Resolves with the counts once every started node is done.
 */
export async function execOnNodes(
  nodes: readonly ResolvedNode[],
  command: string,
  options: ExecOptions,
  transportFor: TransportFactory,
  onOutcome: (o: ExecOutcome) => void | Promise<void> = () => undefined,
): Promise<ExecCounts> {
  const counts: ExecCounts = { nodes: nodes.length, succeeded: 0, exitNonZero: 0, unfinished: 0 };
  // A backstop only: the transport's own timeout kills the command on the node and answers first.
  const backstopMs = options.timeoutMs + options.connectTimeoutMs + (options.graceMs ?? BACKSTOP_GRACE_MS);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < nodes.length && !options.signal?.aborted) {
      const node = nodes[next++]!;
      const outcome = await withBackstop(node, runOn(node, command, options, transportFor), backstopMs);
      if (outcome.ran && outcome.code === 0) counts.succeeded++;
      else if (outcome.ran) counts.exitNonZero++;
      else counts.unfinished++;
      await onOutcome(outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, nodes.length)) }, lane));
  // Cancelled: the nodes never started did not run either.
  counts.unfinished += nodes.length - next;
  return counts;
}

/** A transport that never answers (a hung connection) is abandoned at `ms`; its slot goes to the next node. */
async function withBackstop(node: ResolvedNode, work: Promise<ExecOutcome>, ms: number): Promise<ExecOutcome> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const abandoned = new Promise<ExecOutcome>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          node: node.name,
          ran: false,
          stdout: '',
          stderr: '',
          error: 'no answer in time: the SSH connection or the command hung, and was abandoned',
          errorCode: 'STATE_TIMEOUT',
          durationMs: Math.round(performance.now() - started),
        }),
      ms,
    );
  });
  try {
    return await Promise.race([work, abandoned]);
  } finally {
    clearTimeout(timer);
  }
}

/** At most EXEC_OUTPUT_LIMIT bytes, cut as the transports cut (a transport that ignored the limit is cut here). */
function cut(text: string): { text: string; truncated: boolean } {
  const kept = capText(text, EXEC_OUTPUT_LIMIT);
  return { text: kept.text, truncated: kept.dropped > 0 };
}

/** What a stopped command printed until it was killed (the transports hand it out with the error), cut as the rest. */
function printedUntilStopped(err: unknown): Pick<ExecOutcome, 'stdout' | 'stderr' | 'truncated'> {
  const partial = isRackseedError(err) ? partialOutputOf(err.details) : undefined;
  if (!partial) return { stdout: '', stderr: '' };
  const stdout = cut(partial.stdout);
  const stderr = cut(partial.stderr);
  return { stdout: stdout.text, stderr: stderr.text, ...(partial.truncated || stdout.truncated || stderr.truncated ? { truncated: true as const } : {}) };
}

/** Never rejects: a node that cannot run the command is an outcome like any other. */
async function runOn(node: ResolvedNode, command: string, options: ExecOptions, transportFor: TransportFactory): Promise<ExecOutcome> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  const { timeoutMs, signal } = options;
  let transport: Transport | undefined;
  try {
    // The signal reaches the connect too: a node that accepts and then stalls must not hold a cancel for the connect timeout.
    transport = await transportFor(node, signal ? { signal } : {});
    const r = await transport.exec(command, { timeoutMs, outputLimitBytes: EXEC_OUTPUT_LIMIT, ...(signal ? { signal } : {}) });
    const stdout = cut(r.stdout);
    const stderr = cut(r.stderr);
    const truncated = stdout.truncated || stderr.truncated || (r.dropped !== undefined && r.dropped.stdout + r.dropped.stderr > 0);
    return { node: node.name, ran: true, code: r.code, stdout: stdout.text, stderr: stderr.text, ...(truncated ? { truncated: true as const } : {}), durationMs: took() };
  } catch (err) {
    const code = isRackseedError(err) ? err.code : undefined;
    // Only the command has this timeout (connecting has its own, and fails STATE_TRANSPORT): it ran and was killed.
    if (transport && code === 'STATE_TIMEOUT') {
      return { node: node.name, ran: false, timedOut: true, ...printedUntilStopped(err), error: `killed after ${Math.round(timeoutMs / 1000)} s`, errorCode: code, durationMs: took() };
    }
    if (code === 'STATE_CANCELLED') {
      const error = transport ? 'cancelled: killed' : 'cancelled while connecting: not run';
      return { node: node.name, ran: false, ...printedUntilStopped(err), error, errorCode: code, durationMs: took() };
    }
    // The transports name the node first: the outcome already does.
    const message = withoutTarget((err as Error).message, node.name);
    return { node: node.name, ran: false, stdout: '', stderr: '', error: message, ...(code ? { errorCode: code } : {}), durationMs: took() };
  } finally {
    await transport?.close().catch(() => undefined);
  }
}
