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
  return async (req: Request, res: Response): Promise<void> => {
    let cursor = startCursor(req) ?? (await latestEventId(deps.store));
    res.status(200).set({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // nginx buffers responses by default, which would hold events back.
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    res.write('retry: 2000\n\n');

    let closed = false;
    let pollTimer: NodeJS.Timeout | undefined;
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
    const stop = () => {
      closed = true;
      clearInterval(heartbeat);
      if (pollTimer) clearTimeout(pollTimer);
    };
    // The response's close (not the request's) is what fires when the browser goes away mid-stream.
    res.on('close', stop);

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
      send('summary', fleetStatus(deps.serverName, listNodeViews(inv, await deps.store.listNodes())));
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
