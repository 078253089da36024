import type pg from 'pg';

import { RackseedError } from '../model/errors.js';
import { sqlState, UNIQUE_VIOLATION } from './postgres-open.js';
import type { RunCursor } from './prune.js';
import type { Run, RunKind, RunQuery, RunResult } from './types.js';
import { storedJson } from './stored-json.js';

interface RunRow {
  id: string;
  node: string;
  kind: string;
  result: string;
  started_at: number;
  finished_at: number | null;
  summary: Record<string, unknown>;
  details: unknown;
}

function toRun(r: RunRow): Run {
  const run: Run = {
    id: r.id,
    node: r.node,
    kind: r.kind as RunKind,
    result: r.result as RunResult,
    startedAt: r.started_at,
    summary: r.summary,
    details: r.details,
  };
  if (r.finished_at !== null) run.finishedAt = r.finished_at;
  return run;
}

/** jsonb parameters go as text: pg would turn a JS array into a PostgreSQL array, not JSON. */
const json = (value: unknown): string => storedJson(value);

/** apply/test/readiness/audit/install runs: written twice (start, finish), read newest first. */
export class PgRuns {
  constructor(private readonly pool: pg.Pool) {}

  async create(run: Run): Promise<void> {
    try {
      await this.pool.query(
        `INSERT INTO runs (id, node, kind, result, started_at, finished_at, summary, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb)`,
        [run.id, run.node, run.kind, run.result, run.startedAt, run.finishedAt ?? null, json(run.summary), json(run.details)],
      );
    } catch (e) {
      if (sqlState(e) === UNIQUE_VIOLATION) {
        throw new RackseedError('STORE_CONFLICT', `run "${run.id}" already exists`, { id: run.id }, { cause: e });
      }
      throw e;
    }
  }

  async finish(id: string, patch: { result: RunResult; finishedAt: number; summary: Record<string, unknown>; details: unknown }): Promise<void> {
    const r = await this.pool.query(
      'UPDATE runs SET result = $2, finished_at = $3, summary = $4::jsonb, details = $5::jsonb WHERE id = $1',
      [id, patch.result, patch.finishedAt, json(patch.summary), json(patch.details)],
    );
    if (r.rowCount === 0) throw new RackseedError('NOT_FOUND', `run "${id}" does not exist`, { id });
  }

  async abandon(q: { server: string; before: number; finishedAt: number; error: { code: string; message: string } }): Promise<number> {
    const r = await this.pool.query(
      `UPDATE runs SET result = 'failed', finished_at = $3, summary = summary || jsonb_build_object('error', $4::jsonb)
       WHERE result = 'running' AND started_at < $2 AND (summary->>'server' IS NULL OR summary->>'server' = $1)`,
      [q.server, q.before, q.finishedAt, json(q.error)],
    );
    return r.rowCount ?? 0;
  }

  /**
   * One batch of pruning: the oldest finished runs before `before` after `cursor` (runs_started), then the delete,
   * which checks each again and keeps a node's newest `keep` finished runs of the kind (runs_node_kind_started) and
   * its newest apply that records what it configured. Only newer rows decide whether a row stays, so the newest ones
   * are never removed whatever order the rows go in. Returns how many went and where the next batch starts.
   */
  async pruneBatch(q: { before: number; keep: number; limit: number; cursor: RunCursor }): Promise<{ deleted: number; next?: RunCursor }> {
    const rows = (
      await this.pool.query<{ id: string; started_at: number }>(
        `SELECT id, started_at FROM runs
         WHERE result <> 'running' AND started_at < $1 AND (started_at, id) > ($2, $3)
         ORDER BY started_at, id LIMIT $4`,
        [q.before, q.cursor.startedAt, q.cursor.id, q.limit],
      )
    ).rows;
    if (rows.length === 0) return { deleted: 0 };
    const r = await this.pool.query(
      `DELETE FROM runs AS r
       WHERE r.id = ANY($1::text[]) AND r.result <> 'running' AND r.started_at < $2
         AND (SELECT count(*) FROM (SELECT 1 FROM runs AS n
               WHERE n.node = r.node AND n.kind = r.kind AND (n.started_at, n.id) > (r.started_at, r.id) AND n.result <> 'running'
               LIMIT $3) AS newer) >= $3
         AND NOT (r.kind = 'apply' AND coalesce(jsonb_typeof(r.summary -> 'configuredAs'), '') = 'object' AND NOT EXISTS (SELECT 1 FROM runs AS n
               WHERE n.node = r.node AND n.kind = 'apply' AND (n.started_at, n.id) > (r.started_at, r.id)
                 AND coalesce(jsonb_typeof(n.summary -> 'configuredAs'), '') = 'object'))`,
      [rows.map((row) => row.id), q.before, q.keep],
    );
    const deleted = r.rowCount ?? 0;
    const last = rows.at(-1)!;
    return rows.length < q.limit ? { deleted } : { deleted, next: { startedAt: Number(last.started_at), id: last.id } };
  }

  async get(id: string): Promise<Run | undefined> {
    const r = await this.pool.query<RunRow>('SELECT * FROM runs WHERE id = $1', [id]);
    return r.rows[0] && toRun(r.rows[0]);
  }

  async list(q: RunQuery = {}): Promise<Run[]> {
    // LIMIT NULL is no limit. The node variant is separate so it can use the (node, started_at) index.
    const limit = q.limit === undefined ? null : Math.max(0, Math.floor(q.limit));
    const kind = q.kind ?? null;
    if (q.nodes !== undefined) {
      const nodes = q.node === undefined ? q.nodes : q.nodes.filter((n) => n === q.node);
      if (nodes.length === 0) return [];
      const r = await this.pool.query<RunRow>(
        'SELECT * FROM runs WHERE node = ANY($3::text[]) AND ($1::text IS NULL OR kind = $1) ORDER BY started_at DESC, id DESC LIMIT $2',
        [kind, limit, [...nodes]],
      );
      return r.rows.map(toRun);
    }
    const r =
      q.node === undefined
        ? await this.pool.query<RunRow>('SELECT * FROM runs WHERE ($1::text IS NULL OR kind = $1) ORDER BY started_at DESC, id DESC LIMIT $2', [kind, limit])
        : await this.pool.query<RunRow>(
            'SELECT * FROM runs WHERE node = $3 AND ($1::text IS NULL OR kind = $1) ORDER BY started_at DESC, id DESC LIMIT $2',
            [kind, limit, q.node],
          );
    return r.rows.map(toRun);
  }
}
