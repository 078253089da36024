/**
 * One operation at a time on a node, across the services that change it or decide its lifecycle: a state apply, a
 * readiness check and a convergence attempt. Without it an operator's `state apply` ran beside a convergence's (two
 * apt-get runs, one failing on dpkg's lock and failing the node), and a `ready --check` on a failed node could mark
 * it ready while a convergence's apply was failing. Callers queue in arrival order; the lock lives in this process.
 */
export class NodeLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once every earlier holder of `node`'s lock is done; always releases, also when `fn` throws. */
  async withNode<T>(node: string, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(node);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /**
   * Waits for `node`'s lock and returns its release, for a holder that lets go part-way through its work (the
   * reimage route: after its marks and moves, before its reboots). Releasing twice is harmless.
   */
  async acquire(node: string): Promise<() => void> {
    const previous = this.tails.get(node) ?? Promise.resolve();
    let open!: () => void;
    const mine = new Promise<void>((resolve) => (open = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(node, tail);
    await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      open();
      // The last holder out leaves no entry behind (a fleet of thousands must not grow the map for ever).
      if (this.tails.get(node) === tail) this.tails.delete(node);
    };
  }

  /**
   * Waits for the locks of all `nodes` and returns one release for them all. They are queued for in one go, in one
   * order (sorted), before anything is awaited: a node whose lock is free when this is called is this caller's at
   * once, whoever asks next, and two callers holding several locks cannot each wait for the other's.
   */
  async acquireAll(nodes: readonly string[]): Promise<() => void> {
    const queued = [...new Set(nodes)].sort().map((node) => this.acquire(node));
    const releases = await Promise.all(queued);
    return () => releases.forEach((release) => release());
  }

  /** Whether an operation holds or waits for `node`'s lock. */
  isBusy(node: string): boolean {
    return this.tails.has(node);
  }
}
