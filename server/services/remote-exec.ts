import { isRackseedError } from '../model/errors.js';
import type { ResolvedNode } from '../model/inventory.js';
import { runBatch } from '../power/batch.js';
import type { Transport } from '../state/types.js';
import type { TransportFactory } from './node-transport.js';

/**
 * `rackseed exec`: one shell command on many nodes at once, as pdsh or clush do, over the same SSH the states use
 * (root, the server's key, each node's pinned host key: a node rackseed did not provision is refused, never trusted
 * on first use). Each node gets its own answer; a node that cannot be reached or does not finish in time fails alone.
 */

/** Per stream and node: a command that prints a lot on 10,000 nodes must not fill the server's memory. */
export const EXEC_OUTPUT_LIMIT = 64 * 1024;
/** Longer shell text belongs in a script the states put on the nodes. */
export const EXEC_COMMAND_LIMIT = 64 * 1024;

export interface ExecOutcome {
  node: string;
  /** The command ran; `code` is its exit status. False: it could not be run or did not finish (`error`). */
  ran: boolean;
  code?: number;
  stdout: string;
  stderr: string;
  /** stdout or stderr was cut at EXEC_OUTPUT_LIMIT bytes. */
  truncated?: true;
  /** Why the command did not run or finish: no pinned host key, SSH refused, timed out (then it was killed). */
  error?: string;
  errorCode?: string;
  durationMs: number;
}

export interface ExecOptions {
  concurrency: number;
  /** For the command on each node; then it is killed (its process group) and the node fails with a timeout. */
  timeoutMs: number;
  /** For the SSH connection, on top of timeoutMs in the backstop deadline. */
  connectTimeoutMs: number;
  /** Added to both for the backstop, after which a node whose transport never answered is abandoned. Default 10 s. */
  graceMs?: number;
}

function cut(text: string): { text: string; truncated: boolean } {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= EXEC_OUTPUT_LIMIT) return { text, truncated: false };
  // Cut on a character boundary: a multi-byte character split in two would become U+FFFD.
  return { text: bytes.subarray(0, EXEC_OUTPUT_LIMIT).toString('utf8').replace(/\uFFFD$/, ''), truncated: true };
}

export async function execOnNodes(nodes: readonly ResolvedNode[], command: string, options: ExecOptions, transportFor: TransportFactory, onOutcome: (o: ExecOutcome) => void = () => undefined): Promise<ExecOutcome[]> {
  const outcomes = new Array<ExecOutcome>(nodes.length);
  await runBatch(
    nodes,
    // A backstop only: the transport's own timeout kills the command on the node and answers first.
    { concurrency: options.concurrency, timeoutMs: options.timeoutMs + options.connectTimeoutMs + (options.graceMs ?? 10_000) },
    (node) => runOn(node, command, options.timeoutMs, transportFor),
    (node, settled, index) => {
      const outcome: ExecOutcome = settled.ok
        ? settled.value
        : { node: node.name, ran: false, stdout: '', stderr: '', error: 'no answer in time: the SSH connection or the command hung, and was abandoned', errorCode: 'STATE_TIMEOUT', durationMs: Math.round(settled.durationMs) };
      outcomes[index] = outcome;
      onOutcome(outcome);
    },
  );
  return outcomes;
}

/** Never rejects: a node that cannot run the command is an outcome like any other. */
async function runOn(node: ResolvedNode, command: string, timeoutMs: number, transportFor: TransportFactory): Promise<ExecOutcome> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  let transport: Transport | undefined;
  try {
    transport = await transportFor(node);
    const r = await transport.exec(command, { timeoutMs });
    const stdout = cut(r.stdout);
    const stderr = cut(r.stderr);
    return { node: node.name, ran: true, code: r.code, stdout: stdout.text, stderr: stderr.text, ...(stdout.truncated || stderr.truncated ? { truncated: true as const } : {}), durationMs: took() };
  } catch (err) {
    // The transports name the node first: the outcome already does.
    const full = (err as Error).message;
    const message = full.startsWith(`${node.name}: `) ? full.slice(node.name.length + 2) : full;
    return { node: node.name, ran: false, stdout: '', stderr: '', error: message, ...(isRackseedError(err) ? { errorCode: err.code } : {}), durationMs: took() };
  } finally {
    await transport?.close().catch(() => undefined);
  }
}
