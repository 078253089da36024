import type { Migration } from '../migrations/types.js';

/**
 * The SQLite schema (migrations 001 and 002) in PostgreSQL terms. Text keys use the "C" collation so that ORDER BY
 * sorts by code point as SQLite does, whatever locale the database was created with. Times are bigint milliseconds
 * since the epoch, as in the store interface.
 */
export const initial: Migration = {
  version: 1,
  name: 'initial',
  sql: `
    CREATE TABLE node_status (
      id                text COLLATE "C" PRIMARY KEY,
      mac               text,
      state             text NOT NULL,
      reason            text,
      reimage_requested boolean NOT NULL DEFAULT false,
      next_group        text,
      next_role         text,
      stage             text,
      facts             jsonb NOT NULL DEFAULT '{}',
      updated_at        bigint NOT NULL,
      last_seen_at      bigint
    );
    CREATE INDEX node_status_mac ON node_status (mac);

    -- A sequence never hands out an id twice; the store allocates ids only while holding the event-log lock, so they
    -- also become visible in id order and a consumer resuming with afterId never skips one.
    CREATE TABLE events (
      id      bigserial PRIMARY KEY,
      node    text COLLATE "C" NOT NULL REFERENCES node_status (id) ON UPDATE CASCADE,
      at      bigint NOT NULL,
      type    text NOT NULL,
      payload jsonb NOT NULL
    );
    CREATE INDEX events_node_id ON events (node, id);

    -- One row per address (the primary key): an address cannot be held by two MACs.
    CREATE TABLE leases (
      ip         text COLLATE "C" PRIMARY KEY,
      mac        text NOT NULL,
      state      text NOT NULL CHECK (state IN ('offered', 'bound', 'released', 'declined')),
      expires_at bigint NOT NULL,
      hostname   text,
      client_id  text,
      server     text,
      updated_at bigint NOT NULL
    );
    CREATE INDEX leases_mac ON leases (mac);
    -- A MAC holds at most one address. Enforced by the database, not only by the claim logic, so two servers
    -- claiming different addresses for one MAC at the same moment cannot both commit.
    CREATE UNIQUE INDEX leases_one_active_per_mac ON leases (mac) WHERE state IN ('offered', 'bound');

    -- No foreign key to node_status: a run can concern an inventory node that has never reported an event.
    CREATE TABLE runs (
      id          text COLLATE "C" PRIMARY KEY,
      node        text COLLATE "C" NOT NULL,
      kind        text NOT NULL,
      result      text NOT NULL,
      started_at  bigint NOT NULL,
      finished_at bigint,
      summary     jsonb NOT NULL,
      details     jsonb NOT NULL
    );
    CREATE INDEX runs_node_started ON runs (node, started_at);

    CREATE TABLE once_keys (
      key        text PRIMARY KEY,
      used_at    bigint NOT NULL,
      expires_at bigint NOT NULL
    );
    CREATE INDEX once_keys_expires ON once_keys (expires_at);
  `,
};
