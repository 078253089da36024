import type Database from 'better-sqlite3';

import { RackseedError } from '../model/errors.js';
import { fromJson, toJson } from './sqlite-json.js';
import type { RunCursor } from './prune.js';
import type { Run, RunKind, RunQuery, RunResult } from './types.js';

interface RunRow {
  id: string;
  node: string;
  kind: string;
  result: string;
  started_at: number;
  finished_at: number | null;
  summary: string;
  details: string;
}

function toRun(r: RunRow): Run {
  const run: Run = {
    id: r.id,
    node: r.node,
    kind: r.kind as RunKind,
    result: r.result as RunResult,
    startedAt: r.started_at,
    summary: fromJson<Record<string, unknown>>(r.summary),
    details: fromJson<unknown>(r.details),
  };
  if (r.finished_at !== null) run.finishedAt = r.finished_at;
  return run;
}

interface ListParams {
  node: string | null;
  kind: string | null;
  limit: number;
}

/**
 * The queries that read runs across nodes, one statement per shape so SQLite walks an index backwards and stops at
 * LIMIT (migration 006); an "(@kind IS NULL OR kind = @kind)" filter made it scan and sort the whole table. Exported
 * for the test that checks their query plans.
 */
export const RUN_FLEET_QUERIES = {
  newest: 'SELECT * FROM runs ORDER BY started_at DESC, id DESC LIMIT @limit',
  newestOfKind: 'SELECT * FROM runs WHERE kind = @kind ORDER BY started_at DESC, id DESC LIMIT @limit',
  // Several nodes' runs (GET /api/v1/runs?targets=): the ids and start times of each node's runs come from the
  // (node, kind, started_at, id) index alone and are sorted to pick the newest; whole rows (diffs, evidence) are read
  // for those alone.
  newestOfNodes: `SELECT * FROM runs WHERE id IN (
      SELECT id FROM runs WHERE node IN (SELECT value FROM json_each(@nodes)) AND (@kind IS NULL OR kind = @kind)
      ORDER BY started_at DESC, id DESC LIMIT @limit)
    ORDER BY started_at DESC, id DESC`,
  abandon: `UPDATE runs SET result = 'failed', finished_at = @finished_at, summary = json_set(summary, '$.error', json(@error))
      WHERE result = 'running' AND started_at < @before
        AND (json_extract(summary, '$.server') IS NULL OR json_extract(summary, '$.server') = @server)`,
} as const;

/**
 * Pruning, one batch at a time: the oldest candidates after a cursor (runs_started), then the delete, which checks
 * each row again and keeps a node's newest `keep` finished runs of the kind (runs_node_kind_started, migration 007)
 * and its newest apply that records what it configured. Only newer rows decide whether a row stays, so the newest
 * ones are never removed whatever order the rows go in.
 */
export const RUN_PRUNE_QUERIES = {
  candidates: `SELECT id, started_at FROM runs
      WHERE result <> 'running' AND started_at < @before AND (started_at, id) > (@after_started, @after_id)
      ORDER BY started_at, id LIMIT @limit`,
  delete: `DELETE FROM runs AS r
      WHERE r.id IN (SELECT value FROM json_each(@ids)) AND r.result <> 'running' AND r.started_at < @before
        AND (SELECT count(*) FROM (SELECT 1 FROM runs AS n
              WHERE n.node = r.node AND n.kind = r.kind AND (n.started_at, n.id) > (r.started_at, r.id) AND n.result <> 'running'
              LIMIT @keep)) >= @keep
        AND NOT (r.kind = 'apply' AND coalesce(json_type(r.summary, '$.configuredAs'), '') = 'object' AND NOT EXISTS (SELECT 1 FROM runs AS n
              WHERE n.node = r.node AND n.kind = 'apply' AND (n.started_at, n.id) > (r.started_at, r.id)
                AND coalesce(json_type(n.summary, '$.configuredAs'), '') = 'object'))`,
} as const;

/** apply/test/readiness/audit/install runs: written twice (start, finish), read newest first. */
export class SqliteRuns {
  private readonly insertStmt;
  private readonly finishStmt;
  private readonly getStmt;
  private readonly listStmt;
  private readonly listKindStmt;
  private readonly listNodeStmt;
  private readonly listNodesStmt;
  private readonly abandonStmt;
  private readonly pruneCandidatesStmt;
  private readonly pruneStmt;

  constructor(db: Database.Database) {
    this.insertStmt = db.prepare(`
      INSERT INTO runs (id, node, kind, result, started_at, finished_at, summary, details)
      VALUES (@id, @node, @kind, @result, @started_at, @finished_at, @summary, @details)`);
    this.finishStmt = db.prepare(`
      UPDATE runs SET result = @result, finished_at = @finished_at, summary = @summary, details = @details
      WHERE id = @id`);
    this.getStmt = db.prepare<[string], RunRow>('SELECT * FROM runs WHERE id = ?');
    // Negative LIMIT = none. The node variant is separate so it can use the (node, started_at) index.
    this.listStmt = db.prepare<[{ limit: number }], RunRow>(RUN_FLEET_QUERIES.newest);
    this.listKindStmt = db.prepare<[{ kind: string; limit: number }], RunRow>(RUN_FLEET_QUERIES.newestOfKind);
    this.listNodesStmt = db.prepare<[{ nodes: string; kind: string | null; limit: number }], RunRow>(RUN_FLEET_QUERIES.newestOfNodes);
    this.abandonStmt = db.prepare(RUN_FLEET_QUERIES.abandon);
    this.pruneCandidatesStmt = db.prepare<[{ before: number; after_started: number; after_id: string; limit: number }], { id: string; started_at: number }>(
      RUN_PRUNE_QUERIES.candidates,
    );
    this.pruneStmt = db.prepare<[{ ids: string; before: number; keep: number }]>(RUN_PRUNE_QUERIES.delete);
    this.listNodeStmt = db.prepare<[ListParams], RunRow>(`
      SELECT * FROM runs WHERE node = @node AND (@kind IS NULL OR kind = @kind)
      ORDER BY started_at DESC, id DESC LIMIT @limit`);
  }

  create(run: Run): void {
    try {
      this.insertStmt.run({
        id: run.id,
        node: run.node,
        kind: run.kind,
        result: run.result,
        started_at: run.startedAt,
        finished_at: run.finishedAt ?? null,
        summary: toJson(run.summary),
        details: toJson(run.details),
      });
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new RackseedError('STORE_CONFLICT', `run "${run.id}" already exists`, { id: run.id }, { cause: e });
      }
      throw e;
    }
  }

  finish(id: string, patch: { result: RunResult; finishedAt: number; summary: Record<string, unknown>; details: unknown }): void {
    const info = this.finishStmt.run({
      id,
      result: patch.result,
      finished_at: patch.finishedAt,
      summary: toJson(patch.summary),
      details: toJson(patch.details),
    });
    if (info.changes === 0) throw new RackseedError('NOT_FOUND', `run "${id}" does not exist`, { id });
  }

  abandon(q: { server: string; before: number; finishedAt: number; error: { code: string; message: string } }): number {
    return this.abandonStmt.run({ server: q.server, before: q.before, finished_at: q.finishedAt, error: toJson(q.error) }).changes;
  }

  /**
   * One batch of pruning: looks at up to `limit` finished runs started before `before`, after `cursor`, and deletes
   * those not kept. Returns how many went and where the next batch starts (undefined when none are left).
   */
  pruneBatch(q: { before: number; keep: number; limit: number; cursor: RunCursor }): { deleted: number; next?: RunCursor } {
    const rows = this.pruneCandidatesStmt.all({ before: q.before, after_started: q.cursor.startedAt, after_id: q.cursor.id, limit: q.limit });
    if (rows.length === 0) return { deleted: 0 };
    const deleted = this.pruneStmt.run({ ids: JSON.stringify(rows.map((r) => r.id)), before: q.before, keep: q.keep }).changes;
    const last = rows.at(-1)!;
    return rows.length < q.limit ? { deleted } : { deleted, next: { startedAt: last.started_at, id: last.id } };
  }

  get(id: string): Run | undefined {
    const row = this.getStmt.get(id);
    return row ? toRun(row) : undefined;
  }

  list(q: RunQuery = {}): Run[] {
    const params: ListParams = {
      node: q.node ?? null,
      kind: q.kind ?? null,
      limit: q.limit === undefined ? -1 : Math.max(0, Math.floor(q.limit)),
    };
    if (q.nodes !== undefined) {
      const nodes = q.node === undefined ? q.nodes : q.nodes.filter((n) => n === q.node);
      if (nodes.length === 0) return [];
      return this.listNodesStmt.all({ nodes: JSON.stringify(nodes), kind: params.kind, limit: params.limit }).map(toRun);
    }
    if (q.node !== undefined) return this.listNodeStmt.all(params).map(toRun);
    if (q.kind !== undefined) return this.listKindStmt.all({ kind: q.kind, limit: params.limit }).map(toRun);
    return this.listStmt.all({ limit: params.limit }).map(toRun);
  }
}
