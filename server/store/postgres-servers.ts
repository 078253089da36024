import type pg from 'pg';

import type { ServerImage, ServerRecord } from './types.js';
import { storedJson } from './stored-json.js';

/** The database's clock in milliseconds since the epoch (clock_timestamp: the time of the statement, not of its transaction). */
const DB_NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

interface ServerRow {
  name: string;
  public_url: string;
  tracker: boolean;
  images: ServerImage[];
  last_seen_at: number;
}

function toServer(r: ServerRow): ServerRecord {
  return { name: r.name, publicUrl: r.public_url, tracker: r.tracker, images: r.images, lastSeenAt: r.last_seen_at };
}

/** The servers sharing this database: one row per server, replaced by each heartbeat (one statement, no lock needed). */
export class PgServers {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Stamps the row with `now` when given (tests), else with the database's clock: every server then stamps and ages
   * rows on one clock, so a server whose own clock runs fast is not listed long after it died, nor one whose clock
   * runs slow never listed at all.
   */
  async register(s: Omit<ServerRecord, 'lastSeenAt'>, now: number | undefined): Promise<void> {
    await this.pool.query(
      `INSERT INTO servers (name, public_url, tracker, images, last_seen_at) VALUES ($1, $2, $3, $4::jsonb, COALESCE($5::bigint, ${DB_NOW_MS}))
       ON CONFLICT (name) DO UPDATE SET
         public_url = excluded.public_url, tracker = excluded.tracker, images = excluded.images, last_seen_at = excluded.last_seen_at`,
      // jsonb parameters go as text: pg would turn a JS array into a PostgreSQL array, not JSON.
      [s.name, s.publicUrl, s.tracker, storedJson(s.images), now ?? null],
    );
  }

  /** Rows seen at most `maxAgeMs` before `now` (the database's clock when not given); every row without an age. */
  async list(maxAgeMs: number | undefined, now: number | undefined): Promise<ServerRecord[]> {
    if (maxAgeMs === undefined) return (await this.pool.query<ServerRow>('SELECT * FROM servers ORDER BY name')).rows.map(toServer);
    const r = await this.pool.query<ServerRow>(`SELECT * FROM servers WHERE last_seen_at >= COALESCE($1::bigint, ${DB_NOW_MS}) - $2 ORDER BY name`, [now ?? null, maxAgeMs]);
    return r.rows.map(toServer);
  }

  async remove(name: string): Promise<void> {
    await this.pool.query('DELETE FROM servers WHERE name = $1', [name]);
  }
}
