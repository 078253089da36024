import type pg from 'pg';

import { reduceLifecycle } from '../lifecycle/reducer.js';
import type { Facts, LifecycleEvent, LifecycleState, LifecycleStatus, WipeMode } from '../model/lifecycle.js';
import { EVENT_LOG_LOCK, LOCK_NAMESPACE } from './postgres-migrate.js';
import { inTransaction } from './postgres-open.js';
import type { EventQuery, NewEvent, NodeStatus, RecordResult, StoredEvent } from './types.js';
import { storedJson } from './stored-json.js';

interface StatusRow {
  id: string;
  mac: string | null;
  state: string;
  reason: string | null;
  reimage_requested: boolean;
  reimage_from_group: string | null;
  wipe_requested: string | null;
  stage: string | null;
  installed_image: string | null;
  installed_image_sha256: string | null;
  facts: Facts;
  updated_at: number;
  last_seen_at: number | null;
}

interface EventRow {
  id: number;
  node: string;
  at: number;
  type: string;
  payload: Record<string, unknown>;
}

function toStatus(r: StatusRow): NodeStatus {
  const s: NodeStatus = { id: r.id, state: r.state as LifecycleState, reimageRequested: r.reimage_requested, facts: r.facts, updatedAt: r.updated_at };
  // Absent rather than undefined, so a stored status equals the one the reducer built.
  if (r.mac !== null) s.mac = r.mac;
  if (r.reason !== null) s.reason = r.reason;
  if (r.reimage_from_group !== null) s.reimageFromGroup = r.reimage_from_group;
  if (r.wipe_requested !== null) s.wipeRequested = r.wipe_requested as WipeMode;
  if (r.stage !== null) s.stage = r.stage;
  if (r.installed_image !== null && r.installed_image_sha256 !== null) s.installedImage = { name: r.installed_image, sha256: r.installed_image_sha256 };
  if (r.last_seen_at !== null) s.lastSeenAt = r.last_seen_at;
  return s;
}

function toStatusRow(s: NodeStatus): StatusRow {
  return {
    id: s.id,
    mac: s.mac ?? null,
    state: s.state,
    reason: s.reason ?? null,
    reimage_requested: s.reimageRequested,
    reimage_from_group: s.reimageFromGroup ?? null,
    wipe_requested: s.wipeRequested ?? null,
    stage: s.stage ?? null,
    installed_image: s.installedImage?.name ?? null,
    installed_image_sha256: s.installedImage?.sha256 ?? null,
    facts: s.facts ?? {},
    updated_at: s.updatedAt,
    last_seen_at: s.lastSeenAt ?? null,
  };
}

/** The type lives in its own column (for queries); the rest of the event is the payload. */
function toEvent(r: EventRow): StoredEvent {
  return { id: r.id, node: r.node, at: r.at, event: { ...r.payload, type: r.type } as LifecycleEvent };
}

function lifecycleOf(s: NodeStatus): LifecycleStatus {
  const { id: _id, mac: _mac, updatedAt: _u, lastSeenAt: _l, ...rest } = s;
  return rest;
}

/**
 * Many rows in one statement: the rows travel as one JSON array, so a batch of 10,000 events costs a few round trips,
 * not 10,000. Shared with the SQLite -> PostgreSQL copy.
 */
export const UPSERT_STATUSES = `
  INSERT INTO node_status (id, mac, state, reason, reimage_requested, reimage_from_group, wipe_requested, stage, installed_image, installed_image_sha256, facts, updated_at, last_seen_at)
  SELECT id, mac, state, reason, reimage_requested, reimage_from_group, wipe_requested, stage, installed_image, installed_image_sha256, facts, updated_at, last_seen_at
  FROM jsonb_to_recordset($1::jsonb) AS x(id text, mac text, state text, reason text, reimage_requested boolean,
    reimage_from_group text, wipe_requested text, stage text, installed_image text, installed_image_sha256 text, facts jsonb, updated_at bigint, last_seen_at bigint)
  ON CONFLICT (id) DO UPDATE SET
    mac = excluded.mac, state = excluded.state, reason = excluded.reason, reimage_requested = excluded.reimage_requested,
    reimage_from_group = excluded.reimage_from_group, wipe_requested = excluded.wipe_requested, stage = excluded.stage,
    installed_image = excluded.installed_image, installed_image_sha256 = excluded.installed_image_sha256, facts = excluded.facts,
    updated_at = excluded.updated_at, last_seen_at = excluded.last_seen_at`;

export const INSERT_EVENTS = `
  INSERT INTO events (id, node, at, type, payload)
  SELECT id, node, at, type, payload
  FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, node text, at bigint, type text, payload jsonb)`;

const SELECT_FOR_UPDATE = 'SELECT * FROM node_status WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE';

/**
 * Takes the event-log lock for the rest of the transaction. Every writer of events takes it before allocating ids,
 * so ids are handed out and committed in the same order: a consumer that has read id N will never later find an
 * id below N appear (with a bare sequence, a slow transaction could commit id 9 after id 10 was already read).
 * It also serializes lifecycle updates across servers, including a node's very first event, which has no row yet
 * for FOR UPDATE to lock.
 */
async function lockEventLog(client: pg.ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, EVENT_LOG_LOCK]);
}

async function upsertStatuses(client: pg.ClientBase, statuses: Iterable<NodeStatus>): Promise<void> {
  const rows = [...statuses].map(toStatusRow);
  if (rows.length > 0) await client.query(UPSERT_STATUSES, [storedJson(rows)]);
}

interface Accepted {
  index: number;
  node: string;
  at: number;
  event: LifecycleEvent;
  status: NodeStatus;
}

/** node_status and events: they change together, always inside one transaction. */
export class PgNodes {
  constructor(private readonly pool: pg.Pool) {}

  async get(id: string): Promise<NodeStatus | undefined> {
    const r = await this.pool.query<StatusRow>('SELECT * FROM node_status WHERE id = $1', [id]);
    return r.rows[0] && toStatus(r.rows[0]);
  }

  async list(): Promise<NodeStatus[]> {
    return (await this.pool.query<StatusRow>('SELECT * FROM node_status ORDER BY id')).rows.map(toStatus);
  }

  /**
   * The nodes' rows are locked (FOR UPDATE) and read once, the reducer runs over the batch in memory, then all new
   * statuses and events are written in one statement each: the same result as applying the events one by one.
   */
  async record(batch: readonly NewEvent[]): Promise<RecordResult[]> {
    if (batch.length === 0) return [];
    return inTransaction(this.pool, async (client) => {
      await lockEventLog(client);
      const ids = [...new Set(batch.map((e) => e.node))];
      const locked = await client.query<StatusRow>(SELECT_FOR_UPDATE, [ids]);
      const current = new Map(locked.rows.map((r) => [r.id, toStatus(r)]));
      const changed = new Map<string, NodeStatus>();
      const accepted: Accepted[] = [];
      const results: RecordResult[] = batch.map((e, index) => {
        const at = e.at ?? Date.now();
        const before = current.get(e.node);
        const t = reduceLifecycle(before && lifecycleOf(before), e.event);
        if (!t.ok) return { ok: false, node: e.node, error: t.error };
        const status: NodeStatus = { ...t.status, id: e.node, updatedAt: at };
        if (before?.mac !== undefined) status.mac = before.mac;
        if (before?.lastSeenAt !== undefined) status.lastSeenAt = before.lastSeenAt;
        if (e.event.type === 'discovered') {
          // The machine itself just booted and reported in: that is both its MAC and a sighting.
          status.mac = e.event.mac;
          status.lastSeenAt = at;
        }
        current.set(e.node, status);
        changed.set(e.node, status);
        accepted.push({ index, node: e.node, at, event: e.event, status });
        // Filled in below, once the ids are known.
        return { ok: false, node: e.node, error: '' };
      });
      if (accepted.length === 0) return results;

      const seq = await client.query<{ id: number }>(
        "SELECT nextval(pg_get_serial_sequence('events', 'id')) AS id FROM generate_series(1, $1)",
        [accepted.length],
      );
      // Under the event-log lock nobody else draws from the sequence, so sorting gives input order = id order.
      const eventIds = seq.rows.map((r) => r.id).sort((a, b) => a - b);
      await upsertStatuses(client, changed.values());
      const rows = accepted.map((a, i) => {
        const { type, ...payload } = a.event;
        return { id: eventIds[i]!, node: a.node, at: a.at, type, payload };
      });
      await client.query(INSERT_EVENTS, [storedJson(rows)]);
      accepted.forEach((a, i) => {
        results[a.index] = { ok: true, event: { id: eventIds[i]!, node: a.node, at: a.at, event: a.event }, status: a.status };
      });
      return results;
    });
  }

  async listEvents(q: EventQuery = {}): Promise<StoredEvent[]> {
    const after = q.afterId ?? 0;
    if (q.last !== undefined) {
      const last = Math.max(0, Math.floor(q.last));
      const r =
        q.node === undefined
          ? await this.pool.query<EventRow>('SELECT * FROM (SELECT * FROM events WHERE id > $1 ORDER BY id DESC LIMIT $2) AS t ORDER BY id', [after, last])
          : await this.pool.query<EventRow>('SELECT * FROM (SELECT * FROM events WHERE node = $3 AND id > $1 ORDER BY id DESC LIMIT $2) AS t ORDER BY id', [after, last, q.node]);
      return r.rows.map(toEvent);
    }
    // LIMIT NULL is no limit.
    const limit = q.limit === undefined ? null : Math.max(0, Math.floor(q.limit));
    const r =
      q.node === undefined
        ? await this.pool.query<EventRow>('SELECT * FROM events WHERE id > $1 ORDER BY id LIMIT $2', [after, limit])
        : await this.pool.query<EventRow>('SELECT * FROM events WHERE node = $3 AND id > $1 ORDER BY id LIMIT $2', [after, limit, q.node]);
    return r.rows.map(toEvent);
  }

  async touch(id: string, patch: { mac?: string; facts?: Facts; seenAt?: number }): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      const row = (await client.query<StatusRow>(SELECT_FOR_UPDATE, [[id]])).rows[0];
      // Without an event there is no lifecycle state to give a new row (see SqliteNodes.touch).
      if (!row) return;
      const current = toStatus(row);
      const next: NodeStatus = { ...current, lastSeenAt: patch.seenAt ?? Date.now() };
      if (patch.mac !== undefined || patch.facts !== undefined) {
        if (patch.mac !== undefined) next.mac = patch.mac;
        if (patch.facts !== undefined) next.facts = { ...current.facts, ...patch.facts };
        next.updatedAt = Date.now();
      }
      await upsertStatuses(client, [next]);
    });
  }

  /**
   * Forgets up to `limit` discovered machines last seen before `before`, with their events, in one transaction, under
   * the event-log lock like every lifecycle write. A boot's touch does not take that lock but locks the machine's row:
   * the stale rows are locked here (rows a touch holds are skipped: that machine is being seen), so a touch either
   * commits first and keeps the machine, or waits and finds it forgotten (its next boot discovers it afresh).
   */
  async forgetDiscovered(before: number, limit: number): Promise<{ machines: number; events: number }> {
    return inTransaction(this.pool, async (client) => {
      await lockEventLog(client);
      // id = mac: a discovered machine is keyed by its MAC until the inventory names it (store-sync renames it then).
      const stale = await client.query<{ id: string }>(
        `SELECT id FROM node_status WHERE state = 'discovered' AND id = mac AND coalesce(last_seen_at, updated_at) < $1
         ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [before, limit],
      );
      const ids = stale.rows.map((r) => r.id);
      if (ids.length === 0) return { machines: 0, events: 0 };
      const events = await client.query('DELETE FROM events WHERE node = ANY($1::text[])', [ids]);
      // A machine removed from the inventory (`node remove`) is kept as a discovered one with its runs: they go with it.
      await client.query('DELETE FROM runs WHERE node = ANY($1::text[])', [ids]);
      await client.query('DELETE FROM node_status WHERE id = ANY($1::text[])', [ids]);
      return { machines: ids.length, events: events.rowCount ?? 0 };
    });
  }

  async rename(from: string, to: string): Promise<void> {
    if (from === to) return;
    await inTransaction(this.pool, async (client) => {
      // Serialized with event recording: a rename moves events between nodes and may create the target's row.
      await lockEventLog(client);
      const rows = (await client.query<StatusRow>(SELECT_FOR_UPDATE, [[from, to]])).rows;
      const sourceRow = rows.find((r) => r.id === from);
      const targetRow = rows.find((r) => r.id === to);
      // Already moved (a retry after a crash, or another server won): nothing left to do.
      if (!sourceRow) return;
      await client.query('UPDATE runs SET node = $1 WHERE node = $2', [to, from]);
      if (!targetRow) {
        // events.node follows through ON UPDATE CASCADE.
        await client.query('UPDATE node_status SET id = $1 WHERE id = $2', [to, from]);
        return;
      }
      const source = toStatus(sourceRow);
      const target = toStatus(targetRow);
      // As in SqliteNodes.rename: the target's lifecycle stands, the machine's facts are the fresher news.
      const merged: NodeStatus = { ...target, facts: { ...target.facts, ...source.facts }, updatedAt: Date.now() };
      const mac = source.mac ?? target.mac;
      if (mac !== undefined) merged.mac = mac;
      const seen = Math.max(source.lastSeenAt ?? -Infinity, target.lastSeenAt ?? -Infinity);
      if (Number.isFinite(seen)) merged.lastSeenAt = seen;
      await upsertStatuses(client, [merged]);
      await client.query('UPDATE events SET node = $1 WHERE node = $2', [to, from]);
      await client.query('DELETE FROM node_status WHERE id = $1', [from]);
    });
  }
}
