import type { Migration } from './types.js';

export const initial: Migration = {
  version: 1,
  name: 'initial',
  sql: `
    CREATE TABLE node_status (
      id                TEXT PRIMARY KEY,
      mac               TEXT,
      state             TEXT NOT NULL,
      reason            TEXT,
      reimage_requested INTEGER NOT NULL DEFAULT 0,
      next_group        TEXT,
      next_role         TEXT,
      stage             TEXT,
      facts             TEXT NOT NULL DEFAULT '{}',
      updated_at        INTEGER NOT NULL,
      last_seen_at      INTEGER
    );
    CREATE INDEX node_status_mac ON node_status (mac);

    -- AUTOINCREMENT so an id is never reused: consumers resume with afterId and must not skip a recycled id.
    CREATE TABLE events (
      id      INTEGER PRIMARY KEY AUTOINCREMENT,
      node    TEXT NOT NULL REFERENCES node_status (id) ON UPDATE CASCADE,
      at      INTEGER NOT NULL,
      type    TEXT NOT NULL,
      payload TEXT NOT NULL
    );
    CREATE INDEX events_node_id ON events (node, id);

    CREATE TABLE leases (
      ip         TEXT PRIMARY KEY,
      mac        TEXT NOT NULL,
      state      TEXT NOT NULL CHECK (state IN ('offered', 'bound', 'released', 'declined')),
      expires_at INTEGER NOT NULL,
      hostname   TEXT,
      client_id  TEXT,
      server     TEXT,
      updated_at INTEGER NOT NULL
    );
    CREATE INDEX leases_mac ON leases (mac);

    -- No foreign key to node_status: a run can concern an inventory node that has never reported an event.
    CREATE TABLE runs (
      id          TEXT PRIMARY KEY,
      node        TEXT NOT NULL,
      kind        TEXT NOT NULL,
      result      TEXT NOT NULL,
      started_at  INTEGER NOT NULL,
      finished_at INTEGER,
      summary     TEXT NOT NULL,
      details     TEXT NOT NULL
    );
    CREATE INDEX runs_node_started ON runs (node, started_at);
  `,
};
