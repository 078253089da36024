import type { Request, Response } from 'express';
import type { Logger } from '../../../log.js';
import type { InventoryService } from '../../../services/inventory-service.js';
import { fleetStatus, listNodeViews, nodeView } from '../../../services/node-view.js';
import type { ObservedStore, StoredEvent } from '../../../store/types.js';
import { latestEventId } from './event-cursor.js';
import { formatTime } from './templates.js';
import { cellView, describeEvent, describeProgress, downloadProgress } from './view-model.js';

export interface LiveDeps {
  store: ObservedStore;
  inventory: InventoryService;
  serverName: string;
  log: Logger;
  /** How often the store is polled for new events (default 500 ms). */
  pollMs?: number;
  /** Comment lines that keep proxies from closing an idle stream (default 15 s). */
  heartbeatMs?: number;
  /** Checked before every poll: a stream outliving its session ends (the browser then shows it disconnected). */
  stillAuthorised?: (req: Request) => boolean;
  /** How old a fleet summary may be before a stream asks for a new one (default 1 s). */
  summaryMinMs?: number;
  now?: () => number;
}

/**
 * The fleet summary, shared by every stream: it reads every node's status, and each open dashboard computing its own
 * on every poll saturated the server during a mass install (4 streams: 68 % of a core at 1,000 events/s). One is
 * computed at most every `minMs`, unless one computed after the events a stream just sent is at hand already.
 */
class SharedSummary {
  private cached: { forId: number; at: number; value: Promise<unknown> } | undefined;

  constructor(
    private readonly compute: () => Promise<unknown>,
    private readonly minMs: number,
    private readonly now: () => number,
  ) {}

  /** The summary as of event `forId` or later; undefined when one would be too soon (ask again on the next poll). */
  get(forId: number, latestId: () => Promise<number>): Promise<unknown> | undefined {
    const c = this.cached;
    if (c && c.forId >= forId) return c.value;
    if (c && this.now() - c.at < this.minMs) return undefined;
    const at = this.now();
    // Read before the statuses: the summary then covers at least every event up to that id.
    const value = latestId().then(async (id) => {
      const summary = await this.compute();
      if (this.cached?.value === value) this.cached = { forId: Math.max(id, forId), at, value };
      return summary;
    });
    this.cached = { forId, at, value };
    // A failed read is not kept: the next poll tries again.
    value.catch(() => {
      if (this.cached?.value === value) this.cached = undefined;
    });
    return value;
  }
}

const BATCH = 200;
/** A client that stops reading is cut off rather than buffered for: it reconnects with Last-Event-ID. */
const MAX_BUFFERED_BYTES = 1 << 20;

function startCursor(req: Request): number | undefined {
  const header = req.get('last-event-id');
  const raw = header ?? (typeof req.query.after === 'string' ? req.query.after : undefined);
  return raw !== undefined && /^\d{1,15}$/.test(raw) ? Number(raw) : undefined;
}

/**
 * GET /ui/events: server-sent events. Each stream polls the store for events after its cursor, so it sees what
 * any server sharing the database recorded, with no in-process event bus. Per stored event it sends `node` (the
 * node's current cell view plus the event as one line), then one `summary` (fleet counts) per batch.
 */
export function liveEvents(deps: LiveDeps) {
  const pollMs = deps.pollMs ?? 500;
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const summaries = new SharedSummary(
    async () => fleetStatus(deps.serverName, listNodeViews(deps.inventory.inventory, await deps.store.listNodes())),
    deps.summaryMinMs ?? 1_000,
    deps.now ?? Date.now,
  );
  return async (req: Request, res: Response): Promise<void> => {
    let closed = false;
    let pollTimer: NodeJS.Timeout | undefined;
    let heartbeat: NodeJS.Timeout | undefined;
    const stop = () => {
      closed = true;
      if (heartbeat) clearInterval(heartbeat);
      if (pollTimer) clearTimeout(pollTimer);
    };
    // The response's close (not the request's) is what fires when the browser goes away mid-stream. Listened for
    // before the first store query: a viewer leaving during it (tens of ms on a large PostgreSQL log) otherwise left
    // a stream polling the store for nobody until the session expired.
    res.on('close', stop);
    let cursor = startCursor(req) ?? (await latestEventId(deps.store));
    if (closed) return;
    res.status(200).set({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // nginx buffers responses by default, which would hold events back.
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    res.write('retry: 2000\n\n');

    heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);

    const send = (event: string, data: unknown, id?: number) => {
      res.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };

    const publish = async (events: StoredEvent[]) => {
      const inv = deps.inventory.inventory;
      const ids = [...new Set(events.map((e) => e.node))];
      const statuses = await Promise.all(ids.map((id) => deps.store.getNode(id)));
      const views = new Map(ids.map((id, i) => [id, statuses[i] || inv.nodes.has(id) ? cellView(nodeView(inv.nodes.get(id), statuses[i])) : undefined]));
      for (const e of events) {
        const view = views.get(e.node);
        const progress = downloadProgress(e.event, e.at);
        send('node', { node: e.node, view, event: { id: e.id, at: formatTime(e.at), type: e.event.type, description: describeEvent(e.event) }, ...(progress ? { progress: { ...progress, text: describeProgress(progress), atText: formatTime(progress.at) } } : {}) }, e.id);
      }
      summaryDue = events[events.length - 1]!.id;
    };

    /** The events sent so far are followed by a summary that covers them: now, or on a later poll (shared, throttled). */
    let summaryDue: number | undefined;
    const sendSummaryIfDue = async () => {
      if (summaryDue === undefined) return;
      const due = summaryDue;
      const summary = summaries.get(due, () => latestEventId(deps.store));
      if (!summary) return;
      const value = await summary;
      if (closed) return;
      send('summary', value);
      if (summaryDue === due) summaryDue = undefined;
    };

    const poll = async () => {
      if (closed) return;
      if (deps.stillAuthorised && !deps.stillAuthorised(req)) {
        res.end();
        stop();
        return;
      }
      let full = false;
      try {
        const events = await deps.store.listEvents({ afterId: cursor, limit: BATCH });
        if (!closed && events.length > 0) {
          await publish(events);
          cursor = events[events.length - 1]!.id;
          full = events.length === BATCH;
        }
        if (!closed && !full) await sendSummaryIfDue();
      } catch (err) {
        // A store hiccup must not end the stream: the next poll tries again from the same cursor.
        deps.log.warn({ err }, 'dashboard event poll failed');
      }
      if (closed) return;
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        res.end();
        stop();
        return;
      }
      pollTimer = setTimeout(() => void poll(), full ? 0 : pollMs);
    };
    void poll();
  };
}
