import type { ExpectedHardware } from '../model/inventory.js';
import type { ExecResult, NodeFacts } from '../state/types.js';

/**
 * Readiness: a node is ready only when its roles' real functions work (GPU visible with the right driver, slurmd
 * registered and idle, k3s node Ready), never merely because a port answers. Each role declares checks; a check is
 * one shell command run on the node and a PURE evaluation of its output into evidence. Only the engine touches the
 * transport, so every evaluation is testable against recorded outputs.
 */

/** One verified fact: what was expected, what was seen, and whether they agree. */
export interface Evidence {
  /** Dotted name, e.g. 'nvidia.gpu_count'; also the label of the readiness failure metric. */
  check: string;
  /** The role that declared the check ('base', 'nvidia', ...). */
  role: string;
  expected: string;
  seen: string;
  pass: boolean;
  /** Why it failed, in words an operator can act on (set on failure, sometimes on a notable pass). */
  reason?: string;
  /**
   * The check's command did not run (timeout, dropped connection): nothing was observed. It fails readiness, and an
   * audit with one is not complete (it may hide drift), as opposed to a check that ran and saw something wrong.
   */
  notRun?: true;
}

/** A cluster node as the base checks need it (for /etc/hosts). */
export interface ClusterMember {
  name: string;
  ip?: string;
}

/** Everything a check may compare against: the node's declared hardware and data, its facts, the cluster. */
export interface CheckContext {
  node: string;
  group: string;
  roles: readonly string[];
  hardware: ExpectedHardware;
  /** The node's merged group data (group.data with the node's overrides). */
  data: Record<string, unknown>;
  labels: Record<string, string>;
  facts: NodeFacts;
  cluster: { name: string; domain?: string; nodes: readonly ClusterMember[] };
  /** slurm.drain_unready is on: a Slurm drain of rackseed's own readiness is its business, not a failure (roles/slurm.ts). */
  slurmDrainUnready?: boolean;
}

export interface CheckSpec {
  /** Spec id, e.g. 'nvidia.smi'; one spec can yield evidence for several checks. */
  id: string;
  role: string;
  /** The shell command that collects the raw output (one exec per spec). */
  command(ctx: CheckContext): string;
  /** This check's own limit, for a tool that can hang; the operator's command timeout applies when smaller or when absent. */
  timeoutMs?: number;
  /** PURE: output (exit code, stdout, stderr) and expectations -> evidence. Never throws on odd output. */
  evaluate(output: ExecResult, ctx: CheckContext): Evidence[];
}

/** A role's readiness declaration: its checks, or evidence produced without any command (a misconfiguration). */
export interface RoleChecks {
  role: string;
  checks: CheckSpec[];
  /** Evidence decided from the declaration alone (e.g. "nvidia role but no hardware.gpu declared"). */
  static?: Evidence[];
}

export interface Verdict {
  ready: boolean;
  failing: Evidence[];
  /** 'readiness: nvidia.compute_capability (sm_61 < sm_70); infiniband.ports (6 of 8 ...)'; '' when ready. */
  summary: string;
}
