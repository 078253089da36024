import type { Lease, LeaseState } from './types.js';

/** A lease as both stores keep it: one row per address, columns in snake_case, absent optionals as NULL. */
export interface LeaseRow {
  ip: string;
  mac: string;
  state: string;
  expires_at: number;
  hostname: string | null;
  client_id: string | null;
  server: string | null;
  updated_at: number;
}

export function toLease(r: LeaseRow): Lease {
  const l: Lease = { ip: r.ip, mac: r.mac, state: r.state as LeaseState, expiresAt: r.expires_at, updatedAt: r.updated_at };
  if (r.hostname !== null) l.hostname = r.hostname;
  if (r.client_id !== null) l.clientId = r.client_id;
  if (r.server !== null) l.server = r.server;
  return l;
}
