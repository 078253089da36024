import type { Logger } from '../log.js';
import type { ResolvedNode } from '../model/inventory.js';
import type { ObservedStore } from '../store/types.js';
import type { InventoryService } from './inventory-service.js';
import type { ReadinessService } from './readiness-service.js';

export interface ReadinessSweepOptions {
  inventory: Pick<InventoryService, 'inventory'>;
  store: Pick<ObservedStore, 'listNodes'>;
  readiness: Pick<ReadinessService, 'run'>;
  intervalMs: number;
  log: Logger;
  /**
   * Whether this server can reach the node (the server passes "has a host key pinned here"): with several servers on
   * one store, another server's nodes would fail its SSH and flap between ready and failed.
   */
  reachable?: (node: ResolvedNode) => boolean;
}

/**
 * readiness.interval_minutes: readiness checked again on every node that was ready, or failed only its readiness,
 * every interval, as a node health check does. A node whose GPU falls off the bus a week after install turns failed
 * (and, with slurm.drain_unready, is drained in Slurm) without anyone running `ready --check`; once fixed it turns
 * ready again (and is resumed). Nodes installing, never configured or failed in their install or states are left to
 * convergence and the operator. A sweep still running when the next one is due is not doubled.
 */
export class ReadinessSweep {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(private readonly o: ReadinessSweepOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sweepNow(), this.o.intervalMs);
    this.timer.unref();
  }

  /** One sweep (joins the one under way); resolves with the number of nodes checked, 0 if it failed (logged). */
  sweepNow(): Promise<number> {
    this.running ??= this.sweep().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stops the timer; waits a little for a sweep under way (a long one must not hold up the server's shutdown). */
  async stop(graceMs = 10_000): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    if (!this.running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }

  private async sweep(): Promise<number> {
    try {
      const inv = this.o.inventory.inventory;
      // A node marked for reimage is about to go down for its install: not a health problem to report.
      const due = new Set(
        (await this.o.store.listNodes()).filter((s) => !s.reimageRequested && (s.state === 'ready' || (s.state === 'failed' && s.stage === 'readiness'))).map((s) => s.id),
      );
      const reachable = this.o.reachable ?? (() => true);
      const nodes: ResolvedNode[] = [...inv.nodes.values()].filter((n) => due.has(n.name) && reachable(n));
      if (nodes.length === 0) return 0;
      const started = Date.now();
      const reports = await this.o.readiness.run(nodes);
      const failing = reports.filter((r) => !r.ready).map((r) => r.node);
      this.o.log.info({ nodes: nodes.length, failing, ms: Date.now() - started }, 'periodic readiness sweep done');
      return nodes.length;
    } catch (err) {
      this.o.log.error({ err }, 'periodic readiness sweep failed');
      return 0;
    }
  }
}
