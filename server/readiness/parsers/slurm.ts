/**
 * Pure parsers for a Slurm node's state as the controller sees it, from `scontrol show node NAME` (State= with
 * +FLAGS and Reason=) or `sinfo -h -N -o '%N|%T|%E'` lines (long state with a one-character suffix), and for
 * `scontrol ping`.
 */

export interface SlurmNodeState {
  node: string;
  /** As printed: 'IDLE+DRAIN+MAINTENANCE' (scontrol) or 'drained*' (sinfo). */
  state: string;
  reason?: string;
}

export type SlurmStateClass = { usable: true; why: string } | { usable: false; why: string };

/** Base states in which a registered node takes jobs. */
const USABLE_BASE = new Set(['IDLE', 'MIXED', 'ALLOCATED', 'ALLOC', 'MIX', 'COMPLETING', 'COMP']);
/** sinfo's long names for states that are not usable. */
const UNUSABLE_LONG = new Set(['DRAINED', 'DRAINING', 'DRAIN', 'DOWN', 'FAIL', 'FAILING', 'UNKNOWN', 'FUTURE', 'INVAL', 'POWERED_DOWN', 'POWERING_DOWN', 'POWERING_UP', 'POWER_DOWN', 'REBOOT_REQUESTED', 'REBOOT_ISSUED', 'BLOCKED', 'NO_RESPOND', 'NOT_RESPONDING']);
/** Flags that make an otherwise usable base state unusable. MAINTENANCE/RESERVED/PLANNED/CLOUD leave it usable. */
const UNUSABLE_FLAGS = new Set(['DRAIN', 'DRAINING', 'DRAINED', 'FAIL', 'NOT_RESPONDING', 'NO_RESPOND', 'POWERED_DOWN', 'POWERING_DOWN', 'POWERING_UP', 'POWER_DOWN', 'REBOOT_REQUESTED', 'REBOOT_ISSUED', 'INVALID_REG', 'INVAL', 'DOWN']);
/** sinfo suffixes: * not responding, ~ powered off, # powering up, % powering down, ! pending power down, @ pending reboot, ^ reboot issued. */
const UNUSABLE_SUFFIX: Record<string, string> = {
  '*': 'not responding',
  '~': 'powered off',
  '#': 'powering up',
  '%': 'powering down',
  '!': 'pending power down',
  '@': 'pending reboot',
  '^': 'reboot issued',
};

/** Classifies a state string from either tool. */
export function classifySlurmState(state: string): SlurmStateClass {
  const trimmed = state.trim();
  if (trimmed === '') return { usable: false, why: 'no state reported' };
  const suffix = trimmed.slice(-1);
  const suffixWhy = UNUSABLE_SUFFIX[suffix];
  const body = suffixWhy || suffix === '$' || suffix === '-' ? trimmed.slice(0, -1) : trimmed;
  const [base = '', ...flags] = body.toUpperCase().split('+');
  if (suffixWhy) return { usable: false, why: `${base.toLowerCase()} but ${suffixWhy}` };
  const badFlag = flags.find((f) => UNUSABLE_FLAGS.has(f));
  if (badFlag) return { usable: false, why: `${base.toLowerCase()} with ${badFlag.toLowerCase()}` };
  if (USABLE_BASE.has(base)) return { usable: true, why: base.toLowerCase() };
  if (UNUSABLE_LONG.has(base)) return { usable: false, why: base.toLowerCase() };
  return { usable: false, why: `${base.toLowerCase()} is not idle, mixed or allocated` };
}

/** `scontrol show node` output (one or more nodes, blank-line separated). Values may hold spaces only in Reason/OS/Comment, which run to the end of their line. */
export function parseScontrolShowNode(text: string): SlurmNodeState[] {
  const nodes: SlurmNodeState[] = [];
  let current: SlurmNodeState | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const rest = /^(Reason|OS|Comment|Extra)=(.*)$/.exec(line);
    if (rest) {
      if (current && rest[1] === 'Reason') current.reason = rest[2]!.trim();
      continue;
    }
    for (const m of line.matchAll(/(\w+)=(\S*)/g)) {
      if (m[1] === 'NodeName') {
        current = { node: m[2]!, state: '' };
        nodes.push(current);
      } else if (m[1] === 'State' && current) current.state = m[2]!;
    }
  }
  return nodes;
}

/** `sinfo -h -N -o '%N|%T|%E'` lines; `separator` lets the same reader take other recorded layouts ('%n,%T'). */
export function parseSinfoNodes(text: string, separator = '|'): SlurmNodeState[] {
  const out: SlurmNodeState[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const [node, state, ...reason] = line.split(separator);
    if (!node || state === undefined) continue;
    const r = reason.join(separator).trim();
    out.push({ node: node.trim(), state: state.trim(), ...(r !== '' && r.toLowerCase() !== 'none' ? { reason: r } : {}) });
  }
  return out;
}

export interface SlurmPing {
  controller: string;
  role: string;
  up: boolean;
}

/** `scontrol ping`: 'Slurmctld(primary) at head01 is UP' (one line per controller). */
export function parseScontrolPing(text: string): SlurmPing[] {
  const out: SlurmPing[] = [];
  for (const m of text.matchAll(/Slurmctld\((\w+)\) at (\S+) is (UP|DOWN)/g)) out.push({ role: m[1]!, controller: m[2]!, up: m[3] === 'UP' });
  return out;
}
