import type { Inventory } from '../model/inventory.js';
import type { NewEvent, ObservedStore } from '../store/types.js';
import type { Logger } from '../log.js';

/**
 * Brings the observed state in line with the inventory: a machine that was discovered under its MAC and has
 * since been added to the inventory takes its inventory name (keeping its facts and events), and every
 * inventory node without a status becomes "assigned". All assignments go in one transaction.
 */
export async function syncStoreWithInventory(store: ObservedStore, inv: Inventory, log: Logger): Promise<void> {
  const statuses = new Map((await store.listNodes()).map((s) => [s.id, s]));
  const events: NewEvent[] = [];
  for (const node of inv.nodes.values()) {
    let status = statuses.get(node.name);
    if (!status) {
      const discoveredMac = node.macs.find((m) => statuses.get(m)?.state === 'discovered');
      if (discoveredMac) {
        await store.renameNode(discoveredMac, node.name);
        status = await store.getNode(node.name);
        log.info({ node: node.name, mac: discoveredMac }, 'discovered machine is now an inventory node');
      }
    }
    if (!status || status.state === 'discovered') events.push({ node: node.name, event: { type: 'assigned', group: node.group } });
  }
  if (events.length === 0) return;
  const results = await store.recordEvents(events);
  const rejected = results.filter((r) => !r.ok);
  for (const r of rejected) if (!r.ok) log.warn({ node: r.node, error: r.error }, 'could not mark node assigned');
  log.info({ assigned: results.length - rejected.length }, 'inventory nodes assigned');
}
