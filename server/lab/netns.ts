import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { processStartTicks } from '../util/process-identity.js';

/**
 * Network namespaces for the virtual lab and for tests that need real peers (DHCP clients, QEMU, daemons), without
 * ever touching the host's interfaces. Every link is created directly inside a namespace this harness made (never in
 * the host namespace and moved), so deleting the namespaces removes everything; only PIDs this harness started (or
 * was told about with track()) are ever signalled.
 */

/** Linux IFNAMSIZ is 16 including the NUL. */
const MAX_IFNAME = 15;

let instances = 0;

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface NetnsOptions {
  /**
   * Kill and delete everything on SIGINT/SIGTERM, then exit (default true: a test run interrupted by Ctrl-C leaves
   * nothing behind). The lab turns it off and tears down in its own order.
   */
  handleSignals?: boolean;
  /** Called with each namespace name before it is created (the lab records it in its state file first). */
  onNamespace?: (ns: string) => void;
}

export class Netns {
  /** Short per-run prefix: `rs` + pid in base 36 (+ a counter when one process makes several harnesses). */
  readonly prefix: string;
  private readonly handleSignals: boolean;
  private readonly onNamespace: ((ns: string) => void) | undefined;
  private readonly namespaces: string[] = [];
  private readonly children = new Map<number, ChildProcess>();
  /** Adopted PIDs with their start time when adopted (undefined: already gone then), so a reused number is never signalled. */
  private readonly extraPids = new Map<number, number | undefined>();
  private cleaned = false;
  private readonly onExit = (): void => this.cleanup();
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.cleanup();
    // Raised again with this listener gone, so the signal's default action ends the process. Not process.exit(): a
    // vitest worker replaces it with a function that throws, and the test went on creating namespaces and children
    // that nothing removed.
    process.kill(process.pid, signal);
  };

  constructor(prefix?: string, opts: NetnsOptions = {}) {
    const n = instances++;
    this.prefix = prefix ?? `rs${process.pid.toString(36)}${n === 0 ? '' : n.toString(36)}`;
    this.handleSignals = opts.handleSignals ?? true;
    this.onNamespace = opts.onNamespace;
    process.once('exit', this.onExit);
    if (this.handleSignals) {
      process.once('SIGINT', this.onSignal);
      process.once('SIGTERM', this.onSignal);
    }
  }

  /** The namespaces made so far, in creation order. */
  get namespaceNames(): readonly string[] {
    return [...this.namespaces];
  }

  /** After cleanup (a signal, or the end of a test) nothing may be created or adopted: nothing would ever remove it. */
  private refuseAfterCleanup(what: string): void {
    if (this.cleaned) throw new Error(`network harness ${this.prefix} is already cleaned up: refusing to ${what}`);
  }

  /** A prefixed name for a namespace or interface; throws if the kernel would reject its length. */
  name(suffix: string): string {
    this.refuseAfterCleanup(`create ${this.prefix}${suffix}`);
    const full = `${this.prefix}${suffix}`;
    if (full.length > MAX_IFNAME) throw new Error(`interface name ${full} is longer than ${MAX_IFNAME} characters`);
    return full;
  }

  private ip(args: string[]): void {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** Creates a namespace with its loopback up. */
  addNamespace(suffix: string): string {
    const ns = this.name(suffix);
    this.onNamespace?.(ns);
    this.ip(['netns', 'add', ns]);
    this.namespaces.push(ns);
    this.ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  addBridge(ns: string, suffix: string): string {
    const br = this.name(suffix);
    this.ip(['-n', ns, 'link', 'add', br, 'type', 'bridge']);
    // No STP and no forwarding delay: a DHCP client's first DISCOVER must not vanish into a learning bridge.
    this.ip(['-n', ns, 'link', 'set', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    this.ip(['-n', ns, 'link', 'set', br, 'up']);
    return br;
  }

  /** A veth pair with one end in each namespace (both up); `mac` sets the address of end A. */
  addVeth(nsA: string, suffixA: string, nsB: string, suffixB: string, opts: { mac?: string; masterB?: string } = {}): [string, string] {
    const a = this.name(suffixA);
    const b = this.name(suffixB);
    this.ip(['-n', nsA, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', nsB]);
    if (opts.mac) this.ip(['-n', nsA, 'link', 'set', a, 'address', opts.mac]);
    if (opts.masterB) this.ip(['-n', nsB, 'link', 'set', b, 'master', opts.masterB]);
    this.ip(['-n', nsA, 'link', 'set', a, 'up']);
    this.ip(['-n', nsB, 'link', 'set', b, 'up']);
    return [a, b];
  }

  /** A tap device for QEMU (`-netdev tap,ifname=...,script=no`), optionally enslaved to a bridge. */
  addTap(ns: string, suffix: string, opts: { master?: string } = {}): string {
    const tap = this.name(suffix);
    this.ip(['-n', ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    if (opts.master) this.ip(['-n', ns, 'link', 'set', tap, 'master', opts.master]);
    this.ip(['-n', ns, 'link', 'set', tap, 'up']);
    return tap;
  }

  addAddress(ns: string, ifname: string, cidr: string): void {
    this.ip(['-n', ns, 'addr', 'add', cidr, 'dev', ifname]);
  }

  /** Runs a command to completion inside a namespace. */
  run(ns: string, cmd: string, args: readonly string[], timeoutMs = 30_000): RunResult {
    const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** Starts a long-running command inside a namespace; `ip netns exec` execs, so the PID is the command's. */
  spawn(ns: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    this.refuseAfterCleanup(`start ${cmd}`);
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    if (child.pid !== undefined) {
      const pid = child.pid;
      this.children.set(pid, child);
      child.once('exit', () => this.children.delete(pid));
    }
    return child;
  }

  /** Adopts a PID this run caused to exist but did not spawn directly (a daemon's pidfile), while it runs. */
  track(pid: number): void {
    this.refuseAfterCleanup(`adopt pid ${pid}`);
    this.extraPids.set(pid, processStartTicks(pid));
  }

  /** Drops an adopted PID that is known to be gone, so cleanup never signals a number the kernel may have reused. */
  untrack(pid: number): void {
    this.extraPids.delete(pid);
  }

  /** Signals one PID, only if this harness started or adopted it. */
  kill(pid: number, signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.children.has(pid) && !this.extraPids.has(pid)) throw new Error(`pid ${pid} was not started by this harness`);
    this.signalIfStillOurs(pid, signal);
    if (signal === 'SIGKILL') this.extraPids.delete(pid);
  }

  /**
   * Signals `pid` only while it is still the process this harness started or adopted: a child not yet seen to exit,
   * or an adopted PID whose start time is the one recorded (once a process is gone, the kernel may hand its number to
   * anything on the machine).
   */
  private signalIfStillOurs(pid: number, signal: NodeJS.Signals): void {
    const child = this.children.get(pid);
    const adoptedAt = this.extraPids.get(pid);
    const ours = child ? child.exitCode === null && child.signalCode === null : adoptedAt !== undefined && processStartTicks(pid) === adoptedAt;
    if (!ours) {
      this.extraPids.delete(pid);
      return;
    }
    try {
      process.kill(pid, signal);
    } catch {
      // Gone since the check: nothing to do.
    }
  }

  /** Resolves when the child exits, or after `ms` (then SIGKILLs it). */
  async stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', ms = 5_000): Promise<void> {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const pid = child.pid;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.kill(pid, signal);
    const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
    if ((await Promise.race([exited, timer])) === 'timeout') {
      this.kill(pid, 'SIGKILL');
      await exited;
    }
  }

  /** Kills what this run started, then deletes its namespaces (and with them every link). Safe to call twice. */
  cleanup(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const pid of [...this.children.keys(), ...this.extraPids.keys()]) this.signalIfStillOurs(pid, 'SIGKILL');
    this.children.clear();
    this.extraPids.clear();
    for (const ns of this.namespaces.splice(0).reverse()) {
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    }
    process.removeListener('exit', this.onExit);
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
  }
}
