import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTracker, type Tracker } from '../../../server/images/tracker.js';

/** A 20-byte binary string, as announce query strings carry info-hashes and peer ids. */
const binary = (hex: string) => [...Buffer.from(hex, 'hex')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
const INFO_HASH = 'ab'.repeat(20);

describe('tracker: the seeder hears of a node that still needs pieces the moment it joins', () => {
  const joined: Array<[string, string, number]> = [];
  let tracker: Tracker;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    tracker = createTracker({
      isKnown: (h) => h === INFO_HASH,
      intervalSeconds: 20,
      numwant: 50,
      peerTtlSeconds: 300,
      onLeecherJoined: (infoHash, ip, port) => joined.push([infoHash, ip, port]),
      log: pino({ level: 'silent' }),
    });
    const app = express();
    app.use(tracker.routes);
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    tracker.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const announce = async (peer: string, port: number, left: number, event?: string) => {
    const q = `info_hash=${binary(INFO_HASH)}&peer_id=${binary(peer)}&port=${port}&uploaded=0&downloaded=0&left=${left}&compact=1${event ? `&event=${event}` : ''}`;
    const res = await fetch(`${base}/announce?${q}`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  };

  it('once per leecher, not again on its re-announces, never for a seeder or an unknown torrent', async () => {
    await announce('01'.repeat(20), 6881, 1000, 'started');
    await announce('01'.repeat(20), 6881, 500);
    await announce('02'.repeat(20), 6882, 0, 'started');
    expect(joined).toEqual([[INFO_HASH, '127.0.0.1', 6881]]);
    const unknown = await fetch(`${base}/announce?info_hash=${binary('cd'.repeat(20))}&peer_id=${binary('03'.repeat(20))}&port=6883&left=1&compact=1`);
    await unknown.arrayBuffer();
    expect(joined).toHaveLength(1);
  });

  it('again after the node left and came back (a reinstall)', async () => {
    await announce('01'.repeat(20), 6881, 1000, 'stopped');
    await announce('01'.repeat(20), 6881, 1000, 'started');
    expect(joined).toHaveLength(2);
  });
});
