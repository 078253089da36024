import type { LifecycleEvent, LifecycleState } from '../../../model/lifecycle.js';
import { LIFECYCLE_STATES } from '../../../model/lifecycle.js';
import type { NodeView } from '../../../services/node-view.js';

/**
 * Pure view models for the dashboard: what a rack cell shows, how the rack grid is laid out, how an event reads
 * as one line. No I/O, so the same shapes feed the server-rendered pages and the live (SSE) updates.
 */

export type CellState = LifecycleState | 'unknown';

/** Every state the dashboard colours; ui/static/dashboard.css has one `.state-<name>` rule per entry. */
export const CELL_STATES: readonly CellState[] = [...LIFECYCLE_STATES, 'unknown'];

/** What a rack cell (and a live `node` update) carries: a node's name and lifecycle, nothing else. */
export interface CellView {
  name: string;
  state: CellState;
  /** The CSS class that colours the cell; see stateClass. */
  stateClass: string;
  /** One line for the tooltip and the cell's small print: "provisioning: download", "failed: disk not found". */
  detail: string;
  reimageRequested: boolean;
  inInventory: boolean;
}

export function stateClass(state: CellState): string {
  return `state-${state}`;
}

export function cellView(view: NodeView): CellView {
  const detail = view.state === 'failed' && view.reason ? `${view.state}: ${view.reason}` : view.stage && (view.state === 'provisioning' || view.state === 'wiping') ? `${view.state}: ${view.stage}` : view.state;
  return {
    name: view.name,
    state: view.state,
    stateClass: stateClass(view.state),
    detail: `${detail}${view.wipeRequested && view.state !== 'wiping' ? ` (${view.wipeRequested} wipe requested)` : ''}${view.reimageRequested ? ' (reimage requested)' : ''}`,
    reimageRequested: view.reimageRequested,
    inInventory: view.inInventory,
  };
}

export interface RackRow {
  /** null for the row of nodes that name a rack but no slot. */
  slot: number | null;
  /** One list per rack, in `racks` order; several nodes may share a slot (blade chassis, sloppy inventories). */
  cells: CellView[][];
}

export interface RackGrid {
  racks: string[];
  /** Highest slot first, the way a rack is drawn; only slots some node occupies. */
  rows: RackRow[];
  /** Inventory nodes without a rack. */
  unracked: CellView[];
  /** Machines the store knows that the inventory does not (keyed by MAC). */
  discovered: CellView[];
}

const naturalOrder = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** Racks as columns, slots as rows. Nodes keep inventory order within a cell. */
export function rackGrid(views: readonly NodeView[]): RackGrid {
  const racked = views.filter((v) => v.inInventory && v.rack !== undefined);
  const racks = [...new Set(racked.map((v) => v.rack!))].sort(naturalOrder.compare);
  const slots = [...new Set(racked.filter((v) => v.slot !== undefined).map((v) => v.slot!))].sort((a, b) => b - a);
  const rowKeys: Array<number | null> = racked.some((v) => v.slot === undefined) ? [...slots, null] : slots;
  const rows = rowKeys.map((slot) => ({
    slot,
    cells: racks.map((rack) => racked.filter((v) => v.rack === rack && (v.slot ?? null) === slot).map(cellView)),
  }));
  return {
    racks,
    rows,
    unracked: views.filter((v) => v.inInventory && v.rack === undefined).map(cellView),
    discovered: views.filter((v) => !v.inInventory).map(cellView),
  };
}

/** The installer's download report, as shown on the node page. Every field is optional: old installers send less. */
export interface DownloadProgress {
  at: number;
  source?: string;
  bytes?: number;
  size?: number;
  /** 0..100, when both bytes and size are known. */
  percent?: number;
  rate?: number;
  uploadRate?: number;
  peers?: number;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

/** The progress a `stage: download` event carries, or undefined for any other event. */
export function downloadProgress(event: LifecycleEvent, at: number): DownloadProgress | undefined {
  if (event.type !== 'stage' || !/^download/.test(event.stage)) return undefined;
  const d = event.detail ?? {};
  const progress: DownloadProgress = { at };
  if (typeof d.source === 'string') progress.source = d.source;
  const bytes = num(d.bytes);
  const size = num(d.size);
  if (bytes !== undefined) progress.bytes = bytes;
  if (size !== undefined) progress.size = size;
  if (bytes !== undefined && size) progress.percent = Math.min(100, Math.round((bytes / size) * 1000) / 10);
  const rate = num(d.rate);
  if (rate !== undefined) progress.rate = rate;
  const up = num(d.upload_rate);
  if (up !== undefined) progress.uploadRate = up;
  const peers = num(d.peers);
  if (peers !== undefined) progress.peers = peers;
  return progress;
}

/** "1.2 GiB of 20.0 GiB (6%) at 110.0 MiB/s, 7 peers, uploading 30.0 MiB/s, via swarm" */
export function describeProgress(p: DownloadProgress): string {
  const parts: string[] = [];
  if (p.bytes !== undefined) parts.push(`${formatBytes(p.bytes)}${p.size !== undefined ? ` of ${formatBytes(p.size)}` : ''}${p.percent !== undefined ? ` (${p.percent}%)` : ''}`);
  if (p.rate !== undefined) parts.push(`at ${formatBytes(p.rate)}/s`);
  if (p.peers !== undefined) parts.push(`${p.peers} peers`);
  if (p.uploadRate !== undefined) parts.push(`uploading ${formatBytes(p.uploadRate)}/s`);
  if (p.source !== undefined) parts.push(`via ${p.source}`);
  return parts.join(', ');
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number | undefined): string {
  if (n === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Detail values as `key=value` pairs, for events whose detail is free-form. */
function pairs(detail: Record<string, unknown>): string {
  return Object.entries(detail)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

/** An event as one line of text for the events table. */
export function describeEvent(event: LifecycleEvent): string {
  switch (event.type) {
    case 'discovered':
      return `seen with MAC ${event.mac}`;
    case 'assigned':
      return `group ${event.group}`;
    case 'stage': {
      const progress = downloadProgress(event, 0);
      if (progress && progress.bytes !== undefined) return `${event.stage}: ${describeProgress(progress)}`;
      return event.detail && Object.keys(event.detail).length > 0 ? `${event.stage}: ${pairs(event.detail)}` : event.stage;
    }
    case 'failed':
      return event.stage ? `${event.reason} (stage ${event.stage})` : event.reason;
    case 'plan_refused':
      return event.remote ? `${event.reason} (from ${event.remote})` : event.reason;
    case 'reimage_requested':
      return event.fromGroup ? `moved out of group ${event.fromGroup}` : '';
    case 'installed':
      return event.image ? `image ${event.image.name}` : '';
    case 'removed':
      return event.entry ? `removed from the inventory (was ${event.entry})` : 'removed from the inventory';
    default:
      return '';
  }
}
