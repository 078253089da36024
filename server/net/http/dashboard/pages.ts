import { findNodeByMac } from '../../../inventory/index.js';
import { parseMac } from '../../../model/mac.js';
import type { InventoryService } from '../../../services/inventory-service.js';
import { fleetStatus, listNodeViews, nodeView, type NodeView } from '../../../services/node-view.js';
import type { ObservedStore } from '../../../store/types.js';
import { evidenceRows, newestRun, runHeader, stateRows } from './run-view.js';
import { formatTime } from './templates.js';
import { CELL_STATES, cellView, describeEvent, describeProgress, downloadProgress, rackGrid, stateClass } from './view-model.js';

interface PageDeps {
  inventory: InventoryService;
  store: ObservedStore;
  serverName: string;
}

/** How many of a node's events its page lists (newest first); the live stream adds to them. */
const EVENTS_SHOWN = 100;

/** The fleet summary and the rack grid. */
export async function fleetPage(deps: PageDeps) {
  const views = listNodeViews(deps.inventory.inventory, await deps.store.listNodes());
  const summary = fleetStatus(deps.serverName, views);
  return {
    summary,
    states: CELL_STATES.map((state) => ({ state, stateClass: stateClass(state), count: summary.byState[state] })),
    grid: rackGrid(views),
    total: views.length,
  };
}

/** Everything the node page shows, or undefined when neither the inventory nor the store knows the name. */
export async function nodePage(deps: PageDeps, name: string) {
  const inv = deps.inventory.inventory;
  const mac = parseMac(name);
  const node = inv.nodes.get(name) ?? (mac ? findNodeByMac(inv, mac) : undefined);
  const storeId = node?.name ?? mac ?? name;
  const status = await deps.store.getNode(storeId);
  if (!node && !status) return undefined;
  const view: NodeView = nodeView(node, status);

  const [events, apply, test, readiness, recent] = await Promise.all([
    deps.store.listEvents({ node: storeId, last: EVENTS_SHOWN }),
    deps.store.listRuns({ node: storeId, kind: 'apply', limit: 1 }),
    deps.store.listRuns({ node: storeId, kind: 'test', limit: 1 }),
    deps.store.listRuns({ node: storeId, kind: 'readiness', limit: 1 }),
    deps.store.listRuns({ node: storeId, limit: 10 }),
  ]);

  let progress: ReturnType<typeof downloadProgress>;
  for (let i = events.length - 1; i >= 0 && !progress; i--) progress = downloadProgress(events[i]!.event, events[i]!.at);

  const stateRun = newestRun([apply[0], test[0]]);
  const readinessRun = readiness[0];
  return {
    view,
    cell: cellView(view),
    facts: Object.entries(view.facts).map(([k, v]) => ({ key: k, value: v === null ? '' : String(v) })),
    labels: Object.entries(view.labels).map(([k, v]) => `${k}=${v}`),
    events: events
      .slice(-EVENTS_SHOWN)
      .reverse()
      .map((e) => ({ id: e.id, at: formatTime(e.at), type: e.event.type, description: describeEvent(e.event) })),
    progress: progress && { ...progress, text: describeProgress(progress), atText: formatTime(progress.at) },
    stateRun: stateRun && { header: runHeader(stateRun), rows: stateRows(stateRun.details) },
    readinessRun: readinessRun && { header: runHeader(readinessRun), rows: evidenceRows(readinessRun.details) },
    recentRuns: recent.map(runHeader),
  };
}
