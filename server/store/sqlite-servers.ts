import type Database from 'better-sqlite3';

import { fromJson, toJson } from './sqlite-json.js';
import type { ServerImage, ServerRecord } from './types.js';

interface ServerRow {
  name: string;
  public_url: string;
  tracker: number;
  images: string;
  last_seen_at: number;
}

function toServer(r: ServerRow): ServerRecord {
  return { name: r.name, publicUrl: r.public_url, tracker: r.tracker === 1, images: fromJson<ServerImage[]>(r.images), lastSeenAt: r.last_seen_at };
}

/** The servers sharing this store: one row per server, replaced by each heartbeat. */
export class SqliteServers {
  private readonly upsertStmt;
  private readonly listStmt;
  private readonly removeStmt;

  constructor(db: Database.Database) {
    this.upsertStmt = db.prepare(`
      INSERT INTO servers (name, public_url, tracker, images, last_seen_at) VALUES (@name, @public_url, @tracker, @images, @last_seen_at)
      ON CONFLICT (name) DO UPDATE SET
        public_url = excluded.public_url, tracker = excluded.tracker, images = excluded.images, last_seen_at = excluded.last_seen_at`);
    this.listStmt = db.prepare<[number], ServerRow>('SELECT * FROM servers WHERE last_seen_at >= ? ORDER BY name');
    this.removeStmt = db.prepare<[string]>('DELETE FROM servers WHERE name = ?');
  }

  register(s: Omit<ServerRecord, 'lastSeenAt'>, now: number): void {
    this.upsertStmt.run({ name: s.name, public_url: s.publicUrl, tracker: s.tracker ? 1 : 0, images: toJson(s.images), last_seen_at: now });
  }

  list(seenSince: number): ServerRecord[] {
    return this.listStmt.all(seenSince).map(toServer);
  }

  remove(name: string): void {
    this.removeStmt.run(name);
  }
}
