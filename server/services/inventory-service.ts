import { readFileSync, existsSync } from 'node:fs';
import { RackseedError } from '../model/errors.js';
import type { Inventory } from '../model/inventory.js';
import type { Logger } from '../log.js';
import { replaceFileDurably } from '../util/replace-file.js';
import { addNodeToText, csvReaderFor, importCsvToText, loadInventory, moveNodesToGroupInText, removeNodesFromText, type GroupMove, type NewNodeEntry, type NodeRemoval } from '../inventory/index.js';

const EMPTY_INVENTORY = '# rackseed inventory: groups and nodes (see README "Inventory")\ncluster:\n  name: cluster\ngroups: {}\nnodes: []\n';

/**
 * Holds the current inventory and applies edits to its file. Edits are serialised (one at a time), validated
 * before they are written, and written durably (util/replace-file.ts: flushed temp file + rename, through a
 * symbolic link, mode kept), so a failed edit or a crash leaves the file as it was and a reader never sees half a file.
 */
export class InventoryService {
  private current: Inventory;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<(inv: Inventory) => Promise<void> | void>();

  constructor(
    readonly file: string,
    private readonly log: Logger,
  ) {
    this.current = this.read();
  }

  get inventory(): Inventory {
    return this.current;
  }

  /** Called after every successful (re)load, e.g. to sync the store's view of which nodes exist. */
  onChange(listener: (inv: Inventory) => Promise<void> | void): void {
    this.listeners.add(listener);
  }

  async reload(): Promise<Inventory> {
    return this.serialise(async () => {
      // A missing file at a reload is a mistake in progress (a checkout, a rename, a dangling link), not "no nodes":
      // the inventory in use stays, as for a file that does not parse.
      if (!existsSync(this.file)) {
        throw new RackseedError('INVENTORY_NOT_FOUND', `${this.file} does not exist (any more): kept the inventory in use (${this.current.nodes.size} nodes)`, { file: this.file });
      }
      this.current = this.read();
      await this.notify();
      return this.current;
    });
  }

  async addNode(entry: NewNodeEntry): Promise<Inventory> {
    return this.edit((text) => addNodeToText(text, this.file, entry, csvReaderFor(this.file)));
  }

  async importCsv(csvText: string, csvName: string): Promise<{ added: string[]; updated: string[]; unchanged: string[] }> {
    let outcome = { added: [] as string[], updated: [] as string[], unchanged: [] as string[] };
    await this.edit((text) => {
      const r = importCsvToText(text, this.file, csvText, csvName, csvReaderFor(this.file));
      outcome = { added: r.added, updated: r.updated, unchanged: r.unchanged };
      return r.text;
    });
    return outcome;
  }

  /**
   * Moves nodes into `group` by editing their entries' group: (see moveNodesToGroupInText). With `dryRun`, only
   * checks that the edit can be made and says what it would move; nothing is written.
   */
  async moveToGroup(names: readonly string[], group: string, options: { dryRun: boolean }): Promise<GroupMove['moved']> {
    if (options.dryRun) {
      return this.serialise(async () => moveNodesToGroupInText(this.currentText(), this.file, names, group, csvReaderFor(this.file)).moved);
    }
    let moved: GroupMove['moved'] = [];
    await this.edit((text) => {
      const r = moveNodesToGroupInText(text, this.file, names, group, csvReaderFor(this.file));
      moved = r.moved;
      return r.text;
    });
    return moved;
  }

  /**
   * Removes nodes' entries from the file (see removeNodesFromText). With `dryRun`, only checks that the edit can be
   * made (a range member alone cannot) and says where each node is declared; nothing is written.
   */
  async removeNodes(names: readonly string[], options: { dryRun: boolean }): Promise<NodeRemoval['removed']> {
    if (options.dryRun) {
      return this.serialise(async () => removeNodesFromText(this.currentText(), this.file, names, csvReaderFor(this.file)).removed);
    }
    let removed: NodeRemoval['removed'] = [];
    await this.edit((text) => {
      const r = removeNodesFromText(text, this.file, names, csvReaderFor(this.file));
      removed = r.removed;
      return r.text;
    });
    return removed;
  }

  private currentText(): string {
    return existsSync(this.file) ? readFileSync(this.file, 'utf8') : EMPTY_INVENTORY;
  }

  private async edit(change: (text: string) => string): Promise<Inventory> {
    return this.serialise(async () => {
      replaceFileDurably(this.file, change(this.currentText()));
      this.current = this.read();
      this.log.info({ file: this.file, nodes: this.current.nodes.size }, 'inventory edited');
      await this.notify();
      return this.current;
    });
  }

  private read(): Inventory {
    if (!existsSync(this.file)) {
      this.log.warn({ file: this.file }, 'inventory file does not exist yet; starting with an empty inventory');
      return { cluster: { name: 'cluster', domain: 'cluster.local' }, groups: new Map(), nodes: new Map() };
    }
    return loadInventory(this.file);
  }

  /**
   * Tells every listener, each whatever the others did: one that fails (the store down during a sync) must not keep
   * the rest (DHCP reservations, convergence) on the old inventory. The new inventory is in use by then, so the
   * error says so rather than "kept the previous one".
   */
  private async notify(): Promise<void> {
    const failures: string[] = [];
    for (const l of this.listeners) {
      try {
        await l(this.current);
      } catch (err) {
        failures.push(err instanceof Error ? err.message : String(err));
      }
    }
    if (failures.length > 0) {
      throw new RackseedError('INVENTORY_APPLY_FAILED', `${this.file} is loaded and in use (${this.current.nodes.size} nodes), but ${failures.length} of what follows it failed: ${failures.join('; ')}`, { file: this.file });
    }
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
