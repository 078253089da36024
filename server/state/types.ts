/**
 * The state engine's shared types. The pipeline is a chain of typed passes:
 *
 *   SLS text --render (nunjucks)--> YAML --parse--> SlsDocument (StateDecl[] + include/extend/exclude)
 *   --> merge includes, apply extend/exclude --> verify --> requisite-in --> order --> CompiledPlan
 *   --> runner (check/apply per state, over a Transport) --> StateResult[]
 *
 * Everything up to CompiledPlan is pure (no Node I/O). Only transports and the file-backed SLS source touch the OS.
 */

import type { LifecycleState } from '../model/lifecycle.js';

/** Where a declaration came from, for errors: the SLS file (as the operator sees it) and the 1-based line. */
export interface SourceRef {
  file: string;
  line?: number;
}

/** Requisite kinds in precedence order (the order the runner evaluates them in). */
export const REQUISITE_KINDS = ['require', 'watch', 'prereq', 'onchanges', 'onfail'] as const;
export type RequisiteKind = (typeof REQUISITE_KINDS)[number];

/**
 * A reference to another state as the author wrote it: `- pkg: nginx` (module + ID or name) or `- sls: base.ssh`
 * (every state of that SLS). `module` is 'sls' for the latter.
 */
export interface StateRef {
  module: string;
  target: string;
}

export interface DeclaredRequisite {
  kind: RequisiteKind;
  /** True for the `_in` form written on the other state (`require_in`), before the requisite-in pass inverts it. */
  reverse: boolean;
  ref: StateRef;
}

export type OrderValue = number | 'first' | 'last';

export interface RetrySpec {
  attempts: number;
  /** Seconds between attempts. */
  interval: number;
  /** Retry until the result is this value (Salt's `until`, default true). */
  until: boolean;
}

/** One module function of one state ID with one `name` (a `names:` list yields one StateDecl per name). */
export interface StateDecl {
  /** The state ID (the top-level YAML key). */
  id: string;
  /** The SLS this came from, dotted: 'slurm.compute'. */
  sls: string;
  /** 'pkg', 'file', 'service', ... */
  module: string;
  /** 'installed', 'managed', ... */
  fun: string;
  /** The `name` argument, defaulting to the ID. */
  name: string;
  /** Module arguments (everything that is not a requisite or one of the global keywords below). */
  args: Record<string, unknown>;
  requisites: DeclaredRequisite[];
  order?: OrderValue;
  /** Shell commands: skip the state (result true, no changes) if any exits 0. */
  unless: string[];
  /** Shell commands: run the state only if all exit 0. */
  onlyif: string[];
  /** Paths: skip the state if all exist. */
  creates: string[];
  failhard: boolean;
  retry?: RetrySpec;
  source: SourceRef;
}

/** An `extend:` entry: the fields of `module` in state `id` to replace (args) or append to (requisites). */
export interface ExtendDecl {
  id: string;
  module: string;
  args: Record<string, unknown>;
  requisites: DeclaredRequisite[];
  source: SourceRef;
}

export interface ExcludeDecl {
  kind: 'id' | 'sls';
  target: string;
  source: SourceRef;
}

/** One SLS file after render and parse. */
export interface SlsDocument {
  sls: string;
  file: string;
  includes: Array<{ sls: string; source: SourceRef }>;
  states: StateDecl[];
  extends: ExtendDecl[];
  excludes: ExcludeDecl[];
}

/** Salt's state key, unique per compiled state: `module_|-id_|-name_|-fun`. */
export type StateKey = string;

export interface ResolvedRequisite {
  kind: RequisiteKind;
  /** Keys of the states this one depends on (a ref can match several, e.g. an sls ref). */
  on: StateKey[];
  /** The reference as written, for comments ("requisite pkg: nginx failed"). */
  ref: StateRef;
}

export interface CompiledState extends Omit<StateDecl, 'requisites'> {
  key: StateKey;
  requisites: ResolvedRequisite[];
  /** Position in the final execution order (0-based). */
  index: number;
}

/** The output of the compiler: states in execution order, every requisite pointing at an earlier state. */
export interface CompiledPlan {
  states: CompiledState[];
}

/** What the renderer sees. Pillar holds only this node's data (secrets included); never another node's. */
export interface RenderContext {
  node: {
    name: string;
    group: string;
    roles: string[];
    labels: Record<string, string>;
    ip?: string;
    macs: string[];
    rack?: string;
    slot?: number;
  };
  group: { name: string; data: Record<string, unknown> };
  pillar: Record<string, unknown>;
  facts: NodeFacts;
  /** Cluster-wide, non-secret data (e.g. every node's name and address for /etc/hosts). */
  cluster: { name: string; domain?: string; nodes: Array<ClusterNode> };
}

/** One node as every other node's templates see it. */
export interface ClusterNode {
  name: string;
  ip?: string;
  group: string;
  roles: string[];
  /**
   * The hardware facts last collected from that node, when it has been reached at least once: slurm.conf needs
   * every compute node's CPUs, memory and GPUs, and must come out the same on every node.
   */
  facts?: ClusterNodeFacts;
  /**
   * Its lifecycle state in the store, when it has one: a K3s server joins a server that is `ready` (a running
   * cluster) rather than the first in the inventory, which may be a node being reimaged or one added later.
   */
  state?: LifecycleState;
  /**
   * Its states all applied on its current install (ready, or failed only in readiness: a cordon, a label): a K3s server
   * that did runs the cluster, whatever its readiness says now.
   */
  configured?: boolean;
}

export type ClusterNodeFacts = Pick<NodeFacts, 'cpus' | 'memoryMiB'> & { gpus: Array<{ model: string; memoryMiB: number }> };

export type OsFamily = 'debian' | 'redhat' | 'unknown';

/** Facts collected from the node at the start of a run. */
export interface NodeFacts {
  osFamily: OsFamily;
  /** ID from /etc/os-release: 'debian', 'ubuntu', 'rocky', ... */
  osId: string;
  /** VERSION_ID: '12', '22.04', '9.3'. */
  osRelease: string;
  kernel: string;
  arch: string;
  cpus: number;
  memoryMiB: number;
  hostname: string;
  gpus: Array<{ model: string; memoryMiB: number; driver?: string }>;
  nics: Array<{ name: string; mac: string; addresses: string[]; state: string }>;
}

// ---------------------------------------------------------------------------------------------------------------
// Transports

export interface ExecOptions {
  /** Milliseconds; a command that outlives it is killed and the call rejects with STATE_TIMEOUT. */
  timeoutMs?: number;
  stdin?: string | Buffer;
  /**
   * Bytes kept per stream; the rest is counted (ExecResult.dropped) and never held. A caller that keeps only a
   * little of many nodes' output (rackseed exec) says so here, so each node's output is not buffered at the
   * transport's own limit first. Unset: the transport's default (the SSH transport's OUTPUT_LIMIT_BYTES).
   */
  outputLimitBytes?: number;
  /** Aborted: the command is killed as on a timeout (its process group) and the call rejects with STATE_CANCELLED. */
  signal?: AbortSignal;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Bytes dropped per stream beyond outputLimitBytes; present only when some were. */
  dropped?: { stdout: number; stderr: number };
}

export interface WriteOptions {
  /** Octal string such as '0644'. */
  mode?: string;
  owner?: string;
  group?: string;
}

/**
 * How the engine reaches a node. One connection per node is opened once and reused for the whole run.
 * A dropped connection rejects with STATE_TRANSPORT; the runner fails that node's remaining states.
 */
export interface Transport {
  /** The node's name, for logs and errors. */
  readonly target: string;
  /** Runs a shell command (`sh -c`) as root. Resolves with the exit code; rejects only on transport failure or timeout. */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /** Reads a file; undefined if it does not exist. */
  readFile(path: string): Promise<Buffer | undefined>;
  /** Writes a file atomically (temporary file in the same directory, then rename), then applies mode/owner/group. */
  writeFile(path: string, data: string | Buffer, options?: WriteOptions): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------
// Running

/** A state's outcome, Salt-shaped. result null = would change (test mode). */
export interface StateResult {
  key: StateKey;
  id: string;
  name: string;
  sls: string;
  module: string;
  fun: string;
  result: boolean | null;
  changes: Record<string, unknown>;
  comment: string;
  /** Milliseconds. */
  durationMs: number;
  startedAt: number;
  /** Execution index (Salt's __run_num__). */
  runNum: number;
}

/** What a module reports from `check`: what would change to bring the node to the declared state. */
export interface CheckOutcome {
  /** True when the node already matches: apply is not needed. */
  inSync: boolean;
  /** Predicted changes (empty when inSync). For file.managed this includes a unified diff. */
  changes: Record<string, unknown>;
  comment: string;
}

/** What a module reports from `apply` (or `watch`). */
export interface ApplyOutcome {
  result: boolean;
  changes: Record<string, unknown>;
  comment: string;
}

export interface ModuleContext {
  transport: Transport;
  facts: NodeFacts;
  /** Per-command timeout in milliseconds. */
  timeoutMs: number;
  /** Renders a template source (file.managed `template: nunjucks`) with this node's context. */
  renderTemplate(text: string, file: string): string;
  /** Reads a `source:` such as `rackseed://slurm/slurm.conf.njk` from the state tree (server side). */
  readSource(source: string): Promise<{ text: string; file: string }>;
}

/**
 * A state module function: `pkg.installed` is module 'pkg', fun 'installed'. `check` must not change the node.
 * `watch` is the mod_watch action run when a watched state changed (a service restarts); absent means watch acts
 * like require.
 */
export interface StateFunction {
  check(state: CompiledState, ctx: ModuleContext): Promise<CheckOutcome>;
  apply(state: CompiledState, ctx: ModuleContext, checked: CheckOutcome): Promise<ApplyOutcome>;
  watch?(state: CompiledState, ctx: ModuleContext): Promise<ApplyOutcome>;
  /** Validates args at compile time; returns problems as messages naming the key. */
  validate?(args: Record<string, unknown>): string[];
}

/** 'pkg.installed' -> implementation. */
export type ModuleRegistry = ReadonlyMap<string, StateFunction>;

export interface RunOptions {
  /** test=True: checks only, result null for states that would change. */
  test: boolean;
  /** Per-command timeout in milliseconds (default 120 s). */
  timeoutMs?: number;
  /** Stop the whole run on the first failure, as if every state had failhard. */
  failhard?: boolean;
}
