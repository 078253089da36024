import type pg from 'pg';

import type { ServerImage, ServerRecord } from './types.js';
import { storedJson } from './stored-json.js';

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

  async register(s: Omit<ServerRecord, 'lastSeenAt'>, now: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO servers (name, public_url, tracker, images, last_seen_at) VALUES ($1, $2, $3, $4::jsonb, $5)
       ON CONFLICT (name) DO UPDATE SET
         public_url = excluded.public_url, tracker = excluded.tracker, images = excluded.images, last_seen_at = excluded.last_seen_at`,
      // jsonb parameters go as text: pg would turn a JS array into a PostgreSQL array, not JSON.
      [s.name, s.publicUrl, s.tracker, storedJson(s.images), now],
    );
  }

  async list(seenSince: number): Promise<ServerRecord[]> {
    const r = await this.pool.query<ServerRow>('SELECT * FROM servers WHERE last_seen_at >= $1 ORDER BY name', [seenSince]);
    return r.rows.map(toServer);
  }

  async remove(name: string): Promise<void> {
    await this.pool.query('DELETE FROM servers WHERE name = $1', [name]);
  }
}
