import type { Facts, LifecycleEvent, LifecycleStatus } from '../model/lifecycle.js';

/**
 * Observed state: what rackseed has seen happen. One interface, several implementations (SQLite for one server,
 * PostgreSQL for several), all held to test/store/contract.ts. Every write resolves only after it is durable.
 */

/** A node's observed status. `id` is the inventory name of a known node, or the MAC of a discovered machine. */
export interface NodeStatus extends LifecycleStatus {
  id: string;
  /** The MAC the machine was last seen with. */
  mac?: string;
  /** Milliseconds since the epoch. */
  updatedAt: number;
  lastSeenAt?: number;
}

export interface StoredEvent {
  /** Monotonic per store: a consumer can resume after the last id it saw. */
  id: number;
  node: string;
  at: number;
  event: LifecycleEvent;
}

export interface NewEvent {
  node: string;
  event: LifecycleEvent;
  /** Defaults to now. */
  at?: number;
}

export type RecordResult =
  | { ok: true; event: StoredEvent; status: NodeStatus }
  | { ok: false; node: string; error: string };

export interface EventQuery {
  node?: string;
  /** Only events with id > afterId. */
  afterId?: number;
  limit?: number;
  /**
   * Only the newest `last` events (still oldest first), read newest first so a node's long history is not loaded
   * to show its tail. Takes the place of `limit`.
   */
  last?: number;
}

export type LeaseState = 'offered' | 'bound' | 'released' | 'declined';

export interface Lease {
  ip: string;
  mac: string;
  state: LeaseState;
  /** Milliseconds since the epoch. A declined address is quarantined until then. */
  expiresAt: number;
  hostname?: string;
  clientId?: string;
  /** The server that handed it out (matters when several servers share one store). */
  server?: string;
  updatedAt: number;
}

export type ClaimResult =
  | { ok: true; lease: Lease }
  | { ok: false; heldBy: Lease };

export type RunKind = 'apply' | 'test' | 'readiness' | 'audit' | 'install';
export type RunResult = 'success' | 'changed' | 'failed' | 'running';

export interface Run {
  id: string;
  node: string;
  kind: RunKind;
  result: RunResult;
  startedAt: number;
  finishedAt?: number;
  /** Counts and one-line summary. */
  summary: Record<string, unknown>;
  /** Per-state or per-check results. */
  details: unknown;
}

export interface RunQuery {
  node?: string;
  /** Runs of any of these nodes (a fleet verb's resolved targets); an empty list matches none. With `node`: only it, if listed. */
  nodes?: readonly string[];
  kind?: RunKind;
  limit?: number;
}

/**
 * What prune() may remove. Cutoffs are absolute times (milliseconds since the epoch); a cutoff left out removes
 * nothing of that sort. Whatever the cutoffs, a run still `running` is never removed, nor a node's newest
 * `keepLastRunsPerNode` finished runs of each kind, nor its newest apply that records what it configured
 * (summary.configuredAs: convergence compares it with the inventory). Inventory nodes' status and events are never
 * touched.
 */
export interface PrunePolicy {
  /** Finished runs that started before this may go. */
  runsStartedBefore?: number;
  /** At least 1. */
  keepLastRunsPerNode: number;
  /**
   * Discovered machines (state `discovered`, keyed by their MAC: never matched to an inventory node, or removed from
   * the inventory) last seen before this go, with their events and runs. One that boots again is discovered afresh.
   */
  discoveredSeenBefore?: number;
  /**
   * Rows looked at per transaction, so a large backlog never holds the write lock for long. Defaults to
   * PRUNE_BATCH_SIZE (server/store/prune.ts).
   */
  batchSize?: number;
  /** Stops the pruning between two batches (a server shutting down); what was removed stays removed. */
  signal?: AbortSignal;
}

export interface PruneResult {
  runs: number;
  /** Discovered machines forgotten (their status rows). */
  discovered: number;
  /** Their events, removed with them. */
  discoveredEvents: number;
}

/** An image as one server holds it: a server is a web seed for another's torrent only if both hold the same bytes. */
export interface ServerImage {
  name: string;
  /** sha256 of the image's rootfs tarball (its manifest). */
  sha256: string;
  infoHash: string;
}

/** One rackseed server sharing this store, as it last announced itself (a heartbeat). */
export interface ServerRecord {
  /** server.name: unique per server. */
  name: string;
  /** The base URL nodes reach this server on (http.public_url), without a trailing slash. */
  publicUrl: string;
  /** Whether it runs a BitTorrent tracker at <publicUrl>/announce (torrent.enabled). */
  tracker: boolean;
  images: ServerImage[];
  /** Milliseconds since the epoch of its last heartbeat. */
  lastSeenAt: number;
}

export interface ObservedStore {
  /** Creates or upgrades the schema; safe to call on every start. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  getNode(id: string): Promise<NodeStatus | undefined>;
  listNodes(): Promise<NodeStatus[]>;
  /**
   * Appends an event and applies the lifecycle reducer to the node's status in ONE transaction. A rejected
   * transition stores nothing and is returned as { ok: false }.
   */
  recordEvent(e: NewEvent): Promise<RecordResult>;
  /** Many events in one transaction (fleet operations); per-event results in input order. */
  recordEvents(batch: readonly NewEvent[]): Promise<RecordResult[]>;
  listEvents(q?: EventQuery): Promise<StoredEvent[]>;
  /** Merges facts into a node's status without an event (heartbeats, fact refreshes), and stamps lastSeenAt. */
  touchNode(id: string, patch: { mac?: string; facts?: Facts; seenAt?: number }): Promise<void>;
  /** Moves a discovered machine's record (keyed by MAC) to its inventory name, keeping its facts and events. */
  renameNode(fromId: string, toId: string): Promise<void>;

  getLeaseByIp(ip: string): Promise<Lease | undefined>;
  getLeaseByMac(mac: string): Promise<Lease | undefined>;
  listLeases(): Promise<Lease[]>;
  /**
   * Atomically claims `ip` for `mac`: succeeds if the address is free, expired, released, or already this MAC's;
   * fails with the current holder otherwise. A MAC holds at most one address: its other leases are released.
   */
  claimLease(lease: Omit<Lease, 'updatedAt'>, now?: number): Promise<ClaimResult>;
  /**
   * claimLease for many leases in ONE transaction (one durable commit), applied in order: a later claim sees the
   * earlier ones. Results in input order. This is how a DHCP server stays durable at thousands of ACKs a second.
   */
  claimLeases(leases: ReadonlyArray<Omit<Lease, 'updatedAt'>>, now?: number): Promise<ClaimResult[]>;
  /** Marks the lease released if `mac` holds it. */
  releaseLease(ip: string, mac: string): Promise<boolean>;
  /** Quarantines an address a client reported in use (DHCPDECLINE) until `until`. */
  declineLease(ip: string, mac: string, until: number): Promise<void>;

  /**
   * Marks `key` used. True the first time; false when it was already used and has not expired yet. The check and
   * the write are one atomic step, so two servers racing for the same single-use token cannot both win.
   */
  useOnce(key: string, expiresAt: number, now?: number): Promise<boolean>;

  /**
   * Records this server's heartbeat: creates or replaces its row (name is the key), stamping lastSeenAt = `now`.
   * Several servers sharing the store learn of each other through these rows.
   */
  registerServer(server: Omit<ServerRecord, 'lastSeenAt'>, now?: number): Promise<void>;
  /** Servers whose last heartbeat is at most `maxAgeMs` old (all of them when omitted), by name. */
  listServers(maxAgeMs?: number, now?: number): Promise<ServerRecord[]>;
  /** Forgets a server (a clean shutdown), so the others stop pointing nodes at it at once. */
  removeServer(name: string): Promise<void>;

  createRun(run: Run): Promise<void>;
  finishRun(id: string, patch: { result: RunResult; finishedAt: number; summary: Record<string, unknown>; details: unknown }): Promise<void>;
  getRun(id: string): Promise<Run | undefined>;
  listRuns(q?: RunQuery): Promise<Run[]>;
  /**
   * Marks failed the runs still `running` that started before `before` and belong to `server` (summary.server) or to
   * no server (runs from before that field): left by a process that stopped, or whose store write failed, before it
   * recorded the end. `error` joins their summary. Returns how many.
   */
  abandonRuns(q: { server: string; before: number; finishedAt: number; error: { code: string; message: string } }): Promise<number>;

  /** Removes old runs and long-unseen discovered machines, in batches of one transaction each (see PrunePolicy). */
  prune(policy: PrunePolicy): Promise<PruneResult>;
}
