import { shellQuote } from '../state/modules/shell.js';
import { SHOW_NODE_SH, SLURM_DRAIN_PREFIX } from './slurm-shell.js';

/**
 * The shell text that drains and resumes nodes for slurm.drain_unready (server/readiness/slurm-drain.ts decides
 * which), and the reading of what it prints. Pure. A drain set by anyone else (an administrator's reason) is never
 * replaced and never lifted: only reasons starting with SLURM_DRAIN_PREFIX are rackseed's.
 */

export type SlurmDrainAnswer =
  | { node: string; outcome: 'drained' }
  | { node: string; outcome: 'resumed' }
  /** Nothing to do: drained by someone else (drain), or not drained by rackseed (resume). */
  | { node: string; outcome: 'left'; detail: string }
  | { node: string; outcome: 'failed'; error: string };

export function drainScript(drains: ReadonlyArray<{ node: string; reason: string }>): string {
  return [
    SHOW_NODE_SH,
    // A person's hold is theirs, and a reimage's drain belongs to the reboot it waits for (its cancel finds it by
    // its reason): both are left as they are.
    `drain() { show "$1" || { fail "$1"; return; }`,
    // Slurm's own reason on a DOWN node ("Not responding") is nobody's hold; on a drain ("Kill task failed", "Prolog
    // error") it is Slurm keeping the node out, which rackseed must neither replace nor later lift.
    `  case "$reason" in ''|${shellQuote(SLURM_DRAIN_PREFIX)}*) ;;`,
    `    *'[slurm@'*) case "$state" in *DRAIN*) printf 'left %s held by Slurm: %s\\n' "$1" "$reason"; return ;; esac ;;`,
    `    *) printf 'left %s held by someone else: %s\\n' "$1" "$reason"; return ;; esac`,
    `  if out=$(scontrol update nodename="$1" state=drain reason="$2" 2>&1); then printf 'drained %s\\n' "$1"; else fail "$1"; fi; }`,
    ...drains.map((d) => `drain ${shellQuote(d.node)} ${shellQuote(d.reason)}`),
  ].join('\n');
}

export function resumeScript(nodes: readonly string[]): string {
  return [
    SHOW_NODE_SH,
    `resume() { show "$1" || { fail "$1"; return; }`,
    `  case "$state" in *DRAIN*) ;; *) printf 'left %s not drained\\n' "$1"; return ;; esac`,
    `  case "$reason" in ${shellQuote(SLURM_DRAIN_PREFIX)}*) ;; *) printf 'left %s held by someone else: %s\\n' "$1" "$reason"; return ;; esac`,
    `  if out=$(scontrol update nodename="$1" state=resume 2>&1); then printf 'resumed %s\\n' "$1"; else fail "$1"; fi; }`,
    ...nodes.map((n) => `resume ${shellQuote(n)}`),
  ].join('\n');
}

export function parseDrainAnswers(nodes: readonly string[], stdout: string, missing: string): SlurmDrainAnswer[] {
  const seen = new Map<string, SlurmDrainAnswer>();
  for (const raw of stdout.split('\n')) {
    const m = /^(drained|resumed|left|fail) (\S+)(?: (.*))?$/.exec(raw.trim());
    if (!m) continue;
    const [, word, node, rest = ''] = m as unknown as [string, string, string, string | undefined];
    if (word === 'drained') seen.set(node, { node, outcome: 'drained' });
    else if (word === 'resumed') seen.set(node, { node, outcome: 'resumed' });
    else if (word === 'left') seen.set(node, { node, outcome: 'left', detail: rest.trim() });
    else seen.set(node, { node, outcome: 'failed', error: rest.trim() || 'scontrol failed without a message' });
  }
  return nodes.map((node) => seen.get(node) ?? { node, outcome: 'failed', error: missing });
}
