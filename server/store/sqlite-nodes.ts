import type Database from 'better-sqlite3';

import { reduceLifecycle } from '../lifecycle/reducer.js';
import type { Facts, LifecycleEvent, LifecycleState, LifecycleStatus, WipeMode } from '../model/lifecycle.js';
import { fromJson, toJson } from './sqlite-json.js';
import { storedText } from './stored-json.js';
import type { EventQuery, NewEvent, NodeStatus, RecordResult, StoredEvent } from './types.js';

interface StatusRow {
  id: string;
  mac: string | null;
  state: string;
  reason: string | null;
  reimage_requested: number;
  reimage_from_group: string | null;
  wipe_requested: string | null;
  stage: string | null;
  installed_image: string | null;
  installed_image_sha256: string | null;
  facts: string;
  updated_at: number;
  last_seen_at: number | null;
}

interface EventRow {
  id: number;
  node: string;
  at: number;
  type: string;
  payload: string;
}

function toStatus(r: StatusRow): NodeStatus {
  const s: NodeStatus = {
    id: r.id,
    state: r.state as LifecycleState,
    reimageRequested: r.reimage_requested === 1,
    facts: fromJson<Facts>(r.facts),
    updatedAt: r.updated_at,
  };
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

function toStatusParams(s: NodeStatus) {
  return {
    id: s.id,
    mac: s.mac ?? null,
    state: s.state,
    reason: s.reason === undefined ? null : storedText(s.reason),
    reimage_requested: s.reimageRequested ? 1 : 0,
    reimage_from_group: s.reimageFromGroup ?? null,
    wipe_requested: s.wipeRequested ?? null,
    stage: s.stage ?? null,
    installed_image: s.installedImage?.name ?? null,
    installed_image_sha256: s.installedImage?.sha256 ?? null,
    facts: toJson(s.facts),
    updated_at: s.updatedAt,
    last_seen_at: s.lastSeenAt ?? null,
  };
}

/** The type lives in its own column (for queries); the rest of the event is the payload. */
function toEvent(r: EventRow): StoredEvent {
  const payload = fromJson<Record<string, unknown>>(r.payload);
  return { id: r.id, node: r.node, at: r.at, event: { ...payload, type: r.type } as LifecycleEvent };
}

function lifecycleOf(s: NodeStatus): LifecycleStatus {
  const { id: _id, mac: _mac, updatedAt: _u, lastSeenAt: _l, ...rest } = s;
  return rest;
}

/** node_status and events: they change together, always inside one transaction. */
export class SqliteNodes {
  private readonly getStmt;
  private readonly listStmt;
  private readonly upsertStmt;
  private readonly insertEventStmt;
  private readonly deleteStmt;
  private readonly renameStmt;
  private readonly moveEventsStmt;
  private readonly moveRunsStmt;
  private readonly eventsStmt;
  private readonly nodeEventsStmt;
  private readonly lastEventsStmt;
  private readonly lastNodeEventsStmt;
  private readonly recordOne;
  private readonly recordMany;
  private readonly touchTx;
  private readonly renameTx;
  private readonly forgetTx;

  constructor(db: Database.Database) {
    this.getStmt = db.prepare<[string], StatusRow>('SELECT * FROM node_status WHERE id = ?');
    this.listStmt = db.prepare<[], StatusRow>('SELECT * FROM node_status ORDER BY id');
    this.upsertStmt = db.prepare(`
      INSERT INTO node_status (id, mac, state, reason, reimage_requested, reimage_from_group, wipe_requested, stage, installed_image, installed_image_sha256, facts, updated_at, last_seen_at)
      VALUES (@id, @mac, @state, @reason, @reimage_requested, @reimage_from_group, @wipe_requested, @stage, @installed_image, @installed_image_sha256, @facts, @updated_at, @last_seen_at)
      ON CONFLICT (id) DO UPDATE SET
        mac = excluded.mac, state = excluded.state, reason = excluded.reason,
        reimage_requested = excluded.reimage_requested,
        reimage_from_group = excluded.reimage_from_group, wipe_requested = excluded.wipe_requested, stage = excluded.stage,
        installed_image = excluded.installed_image, installed_image_sha256 = excluded.installed_image_sha256, facts = excluded.facts,
        updated_at = excluded.updated_at, last_seen_at = excluded.last_seen_at`);
    this.insertEventStmt = db.prepare<[string, number, string, string]>(
      'INSERT INTO events (node, at, type, payload) VALUES (?, ?, ?, ?)',
    );
    this.deleteStmt = db.prepare<[string]>('DELETE FROM node_status WHERE id = ?');
    // events.node follows through ON UPDATE CASCADE.
    this.renameStmt = db.prepare<[string, string]>('UPDATE node_status SET id = ? WHERE id = ?');
    this.moveEventsStmt = db.prepare<[string, string]>('UPDATE events SET node = ? WHERE node = ?');
    this.moveRunsStmt = db.prepare<[string, string]>('UPDATE runs SET node = ? WHERE node = ?');
    this.eventsStmt = db.prepare<[{ after: number; limit: number }], EventRow>(
      'SELECT * FROM events WHERE id > @after ORDER BY id LIMIT @limit',
    );
    this.nodeEventsStmt = db.prepare<[{ after: number; limit: number; node: string }], EventRow>(
      'SELECT * FROM events WHERE node = @node AND id > @after ORDER BY id LIMIT @limit',
    );

    this.lastEventsStmt = db.prepare<[{ after: number; limit: number }], EventRow>(
      'SELECT * FROM (SELECT * FROM events WHERE id > @after ORDER BY id DESC LIMIT @limit) ORDER BY id',
    );
    this.lastNodeEventsStmt = db.prepare<[{ after: number; limit: number; node: string }], EventRow>(
      'SELECT * FROM (SELECT * FROM events WHERE node = @node AND id > @after ORDER BY id DESC LIMIT @limit) ORDER BY id',
    );

    this.recordOne = db.transaction((e: NewEvent) => this.apply(e));
    this.recordMany = db.transaction((batch: readonly NewEvent[]) => batch.map((e) => this.apply(e)));
    this.touchTx = db.transaction((id: string, patch: { mac?: string; facts?: Facts; seenAt?: number }) =>
      this.touchInTx(id, patch),
    );
    this.renameTx = db.transaction((from: string, to: string) => this.renameInTx(from, to));

    // id = mac: a discovered machine is keyed by its MAC until the inventory names it (store-sync renames it then).
    const staleDiscovered = db.prepare<[{ before: number; limit: number }], { id: string }>(`
      SELECT id FROM node_status WHERE state = 'discovered' AND id = mac AND coalesce(last_seen_at, updated_at) < @before
      ORDER BY id LIMIT @limit`);
    const deleteEvents = db.prepare<[string]>('DELETE FROM events WHERE node = ?');
    // A machine removed from the inventory (`node remove`) is kept as a discovered one with its runs: they go with it.
    const deleteRuns = db.prepare<[string]>('DELETE FROM runs WHERE node = ?');
    this.forgetTx = db.transaction((before: number, limit: number) => {
      const ids = staleDiscovered.all({ before, limit }).map((r) => r.id);
      let events = 0;
      for (const id of ids) {
        events += deleteEvents.run(id).changes;
        deleteRuns.run(id);
        this.deleteStmt.run(id);
      }
      return { machines: ids.length, events };
    });
  }

  get(id: string): NodeStatus | undefined {
    const row = this.getStmt.get(id);
    return row ? toStatus(row) : undefined;
  }

  list(): NodeStatus[] {
    return this.listStmt.all().map(toStatus);
  }

  // IMMEDIATE: take the write lock before reading the status, so a concurrent writer cannot slip in between
  // the read and the write (a DEFERRED read-then-write would fail with SQLITE_BUSY_SNAPSHOT instead of waiting).
  record(e: NewEvent): RecordResult {
    return this.recordOne.immediate(e);
  }

  recordBatch(batch: readonly NewEvent[]): RecordResult[] {
    return this.recordMany.immediate(batch);
  }

  /** Called inside a transaction. A rejected event writes nothing, and later events in a batch still apply. */
  private apply(e: NewEvent): RecordResult {
    const at = e.at ?? Date.now();
    const current = this.get(e.node);
    const t = reduceLifecycle(current && lifecycleOf(current), e.event);
    if (!t.ok) return { ok: false, node: e.node, error: t.error };

    const status: NodeStatus = { ...t.status, id: e.node, updatedAt: at };
    if (current?.mac !== undefined) status.mac = current.mac;
    if (current?.lastSeenAt !== undefined) status.lastSeenAt = current.lastSeenAt;
    if (e.event.type === 'discovered') {
      // The machine itself just booted and reported in: that is both its MAC and a sighting.
      status.mac = e.event.mac;
      status.lastSeenAt = at;
    }
    this.upsertStmt.run(toStatusParams(status));

    const { type, ...payload } = e.event;
    const info = this.insertEventStmt.run(e.node, at, type, toJson(payload));
    const event: StoredEvent = { id: Number(info.lastInsertRowid), node: e.node, at, event: e.event };
    return { ok: true, event, status };
  }

  listEvents(q: EventQuery = {}): StoredEvent[] {
    // Ids start at 1, and a negative LIMIT means none in SQLite: one statement per shape, no SQL built per call.
    if (q.last !== undefined) {
      const params = { after: q.afterId ?? 0, limit: Math.max(0, Math.floor(q.last)) };
      const rows = q.node === undefined ? this.lastEventsStmt.all(params) : this.lastNodeEventsStmt.all({ ...params, node: q.node });
      return rows.map(toEvent);
    }
    const params = { after: q.afterId ?? 0, limit: q.limit === undefined ? -1 : Math.max(0, Math.floor(q.limit)) };
    const rows = q.node === undefined ? this.eventsStmt.all(params) : this.nodeEventsStmt.all({ ...params, node: q.node });
    return rows.map(toEvent);
  }

  touch(id: string, patch: { mac?: string; facts?: Facts; seenAt?: number }): void {
    this.touchTx.immediate(id, patch);
  }

  private touchInTx(id: string, patch: { mac?: string; facts?: Facts; seenAt?: number }): void {
    const current = this.get(id);
    // Without an event there is no lifecycle state to give a new row. Ignoring the touch (rather than throwing)
    // keeps a boot request working in the window between an inventory reload and the sync that assigns the node.
    if (!current) return;
    const next: NodeStatus = { ...current, lastSeenAt: patch.seenAt ?? Date.now() };
    if (patch.mac !== undefined || patch.facts !== undefined) {
      if (patch.mac !== undefined) next.mac = patch.mac;
      if (patch.facts !== undefined) next.facts = { ...current.facts, ...patch.facts };
      next.updatedAt = Date.now();
    }
    this.upsertStmt.run(toStatusParams(next));
  }

  /** Forgets up to `limit` discovered machines last seen before `before`, with their events, in one transaction. */
  forgetDiscovered(before: number, limit: number): { machines: number; events: number } {
    return this.forgetTx.immediate(before, limit);
  }

  rename(from: string, to: string): void {
    this.renameTx.immediate(from, to);
  }

  private renameInTx(from: string, to: string): void {
    if (from === to) return;
    const source = this.get(from);
    // Already moved (a retry after a crash, or another request won): nothing left to do.
    if (!source) return;
    const target = this.get(to);
    this.moveRunsStmt.run(to, from);
    if (!target) {
      this.renameStmt.run(to, from);
      return;
    }
    // The target already has a lifecycle (an inventory node assigned before its first boot): its state and reimage
    // request stand; the discovered record contributes what the machine reported, which is the fresher news.
    const merged: NodeStatus = {
      ...target,
      facts: { ...target.facts, ...source.facts },
      updatedAt: Date.now(),
    };
    const mac = source.mac ?? target.mac;
    if (mac !== undefined) merged.mac = mac;
    const seen = Math.max(source.lastSeenAt ?? -Infinity, target.lastSeenAt ?? -Infinity);
    if (Number.isFinite(seen)) merged.lastSeenAt = seen;
    this.upsertStmt.run(toStatusParams(merged));
    this.moveEventsStmt.run(to, from);
    this.deleteStmt.run(from);
  }
}
