/**
 * The shell text rackseed runs on a Slurm controller for `reimage --when-idle`, and the reading of what it prints.
 * Pure: no I/O here (server/services/slurm-reboot.ts runs it).
 *
 * `scontrol reboot ASAP nextstate=RESUME` drains a node at once (no new jobs), lets its running jobs finish, then has
 * slurmd run RebootProgram (states/slurm: /usr/local/sbin/rackseed-slurm-reboot); the node netboots into the installer
 * its reimage mark asks for, and Slurm resumes it when it registers again. One scontrol per node, not one for all:
 * Slurm refuses the whole list for one name it does not know, and each node must get its own answer.
 */

import { quoteAll, shellQuote } from '../state/modules/shell.js';
import { notHeldPatterns, SHOW_NODE_SH, SLURM_DRAIN_PREFIX, SLURM_REIMAGE_REASON } from './slurm-shell.js';

/** The Slurm reason rackseed's reboot requests carry; a cancel touches only reboots with this reason. */
export { SLURM_REIMAGE_REASON };

/**
 * Nodes per command on the controller: each costs three scontrol calls, and a command that times out leaves its
 * nodes' answers unknown, so pieces stay small.
 */
export const SLURM_NODES_PER_COMMAND = 50;

/** What Slurm did with one node's request. */
export type SlurmNodeAnswer =
  | { node: string; ok: true; /** sinfo's state right after the request: `draining` (jobs running), `reboot^`... */ slurmState?: string }
  | { node: string; ok: false; error: string };

export type SlurmCancelAnswer =
  | { node: string; outcome: 'cancelled' }
  /** No reboot rackseed asked for is pending in Slurm (none at all, or one with another reason: not ours to cancel). */
  | { node: string; outcome: 'none' }
  | { node: string; outcome: 'failed'; error: string };

/**
 * Per node: a node a person holds (drained or DOWN with their reason, slurm-shell.ts) is left alone, since `reason=`
 * and `nextstate=RESUME` would replace that reason and put the node back into service after the reinstall; rackseed's
 * own readiness drain is no hold (the reinstall is what such a node needs). Then the request; then whether Slurm
 * really marked a reboot (it silently ignores one for a node that is powered down, FUTURE, or already rebooting).
 */
export function rebootRequestScript(nodes: readonly string[]): string {
  const names = quoteAll(nodes);
  return [
    SHOW_NODE_SH,
    `for n in ${names}; do`,
    `  show "$n" || { fail "$n"; continue; }`,
    `  case "$reason" in ${notHeldPatterns([SLURM_REIMAGE_REASON, SLURM_DRAIN_PREFIX])}) ;; *) printf 'held %s %s\\n' "$n" "$reason"; continue ;; esac`,
    `  if ! out=$(scontrol reboot ASAP nextstate=RESUME reason=${shellQuote(SLURM_REIMAGE_REASON)} "$n" 2>&1); then fail "$n"; continue; fi`,
    `  show "$n" || { fail "$n"; continue; }`,
    `  case "$state" in *REBOOT_REQUESTED*|*REBOOT_ISSUED*) printf 'ok %s\\n' "$n" ;; *) printf 'ignored %s %s\\n' "$n" "$state" ;; esac`,
    'done',
    // The state each is in now: draining (jobs still run) or rebooting. Informative only: a failure here is ignored.
    `sinfo -h -N -n ${shellQuote(nodes.join(','))} -o 'state %N %T' 2>/dev/null || true`,
  ].join('\n');
}

export function cancelScript(nodes: readonly string[]): string {
  const names = quoteAll(nodes);
  return [
    SHOW_NODE_SH,
    `for n in ${names}; do`,
    `  show "$n" || { fail "$n"; continue; }`,
    `  case "$state" in *REBOOT_REQUESTED*) ;; *) printf 'none %s\\n' "$n"; continue ;; esac`,
    `  case "$reason" in ${shellQuote(SLURM_REIMAGE_REASON)}*) ;; *) printf 'none %s\\n' "$n"; continue ;; esac`,
    `  if out=$(scontrol cancel_reboot "$n" 2>&1); then printf 'cancelled %s\\n' "$n"; else fail "$n"; fi`,
    'done',
  ].join('\n');
}

interface Line {
  word: string;
  node: string;
  rest: string;
}

function lines(stdout: string): Line[] {
  return stdout
    .split('\n')
    .map((l) => /^(\S+) (\S+)(?: (.*))?$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ word: m[1]!, node: m[2]!, rest: (m[3] ?? '').trim() }));
}

/** One answer per requested node, in their order; a node the script printed nothing for failed (it was cut short). */
export function parseRebootAnswers(nodes: readonly string[], stdout: string, missing: string): SlurmNodeAnswer[] {
  const seen = new Map<string, SlurmNodeAnswer>();
  const states = new Map<string, string>();
  for (const l of lines(stdout)) {
    if (l.word === 'ok') seen.set(l.node, { node: l.node, ok: true });
    else if (l.word === 'fail') seen.set(l.node, { node: l.node, ok: false, error: l.rest || 'scontrol failed without a message' });
    else if (l.word === 'held') {
      const error = `held by an administrator (Reason=${l.rest || '?'}): --when-idle would replace that reason and resume the node after its reinstall, so Slurm was not asked; release it (scontrol update state=resume), or reimage it without --when-idle once its jobs are done`;
      seen.set(l.node, { node: l.node, ok: false, error });
    } else if (l.word === 'ignored') seen.set(l.node, { node: l.node, ok: false, error: `Slurm accepted the request but marked no reboot (State=${l.rest || '?'}): it will not reboot the node` });
    // sinfo lists a node once per partition: the first line is enough.
    else if (l.word === 'state' && l.rest !== '' && !states.has(l.node)) states.set(l.node, l.rest);
  }
  return nodes.map((node) => {
    const answer = seen.get(node);
    if (!answer) return { node, ok: false, error: missing };
    const state = states.get(node);
    return answer.ok && state !== undefined ? { ...answer, slurmState: state } : answer;
  });
}

export function parseCancelAnswers(nodes: readonly string[], stdout: string, missing: string): SlurmCancelAnswer[] {
  const seen = new Map<string, SlurmCancelAnswer>();
  for (const l of lines(stdout)) {
    if (l.word === 'cancelled' || l.word === 'none') seen.set(l.node, { node: l.node, outcome: l.word });
    else if (l.word === 'fail') seen.set(l.node, { node: l.node, outcome: 'failed', error: l.rest || 'scontrol failed without a message' });
  }
  return nodes.map((node) => seen.get(node) ?? { node, outcome: 'failed', error: missing });
}

/** `nodes` in pieces of at most `size`. */
export function chunks<T>(items: readonly T[], size = SLURM_NODES_PER_COMMAND): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
