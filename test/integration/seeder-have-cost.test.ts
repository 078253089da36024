import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Torrent } from 'webtorrent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { superSeed } from '../../server/images/seeder-child-superseed.js';
import { seederClient } from '../../server/images/seeder-client.js';
import { makeTorrent } from '../../server/images/torrent.js';
import { btHandshake } from '../support/swarm.js';
import { waitFor } from '../support/wait.js';

/**
 * Every node sends the seeder a HAVE for every piece it gets, so the seeder of a wave of N nodes reads N x pieces
 * HAVEs. webtorrent's own handler scanned the peer's whole bitfield on each one (is the peer a seed now?): a cost of
 * pieces x pieces per node, 2.4 s of the seeder's CPU per 16-node install of 4096 pieces (profiled), and quadratic
 * growth with larger images. The real seeder client with super-seeding, on loopback, meets a peer speaking the
 * BitTorrent wire protocol by hand (the one peer that can send every HAVE on demand), and the bitfield reads it makes
 * are counted: a few per HAVE, not one per piece.
 */
const PIECES = 2048;
const PIECE_LENGTH = 16 * 1024;

let work: string;
let client: ReturnType<typeof seederClient>;
let torrent: Torrent;
let infoHash: string;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-have-cost-'));
  const file = path.join(work, 'rootfs.tar.zst');
  writeFileSync(file, randomBytes(PIECES * PIECE_LENGTH));
  // A tracker on a closed loopback port: the client's announces fail at once and go nowhere else.
  const made = await makeTorrent({ file, announce: ['http://127.0.0.1:1/announce'], webSeeds: [], pieceLength: PIECE_LENGTH }, PIECES * PIECE_LENGTH);
  infoHash = made.infoHash;
  client = seederClient(0);
  await new Promise<void>((resolve) => client.once('listening', () => resolve()));
  torrent = client.add(made.bytes, { path: work, private: true });
  superSeed(torrent);
  await new Promise<void>((resolve, reject) => {
    torrent.once('ready', () => resolve());
    torrent.once('error', reject);
  });
  expect(torrent.progress).toBe(1);
});

afterAll(async () => {
  await new Promise<void>((resolve) => (client ? client.destroy(() => resolve()) : resolve()));
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A BitTorrent message: 4-byte length, id, payload. */
const message = (id: number, payload: Buffer = Buffer.alloc(0)): Buffer => {
  const m = Buffer.alloc(5 + payload.length);
  m.writeUInt32BE(1 + payload.length, 0);
  m[4] = id;
  payload.copy(m, 5);
  return m;
};
const MSG = { choke: 0, unchoke: 1, interested: 2, have: 4, bitfield: 5 } as const;

/** A peer that has done the handshake; `received` lists the ids of the messages the seeder sent it, in order. */
function connectPeer(port: number): { socket: net.Socket; received: number[] } {
  const received: number[] = [];
  const socket = net.connect(port, '127.0.0.1');
  const peerId = Buffer.concat([Buffer.from('-RS0001-'), randomBytes(12)]);
  socket.write(btHandshake(infoHash, peerId));
  let buffered = Buffer.alloc(0);
  let handshaken = false;
  socket.on('data', (data: Buffer) => {
    buffered = Buffer.concat([buffered, data]);
    if (!handshaken) {
      if (buffered.length < 68) return;
      buffered = buffered.subarray(68);
      handshaken = true;
    }
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
      const length = buffered.readUInt32BE(0);
      if (length > 0) received.push(buffered[4]!);
      buffered = buffered.subarray(4 + length);
    }
  });
  return { socket, received };
}

interface SeederSideWire {
  isSeeder: boolean;
  peerPieces: { get(index: number): boolean };
}

describe('a complete seeder and the HAVEs of the nodes it feeds', () => {
  it('reads a few bitfield bits per HAVE (not the whole bitfield), and chokes the peer once it has every piece', async () => {
    const { socket, received } = connectPeer(client.torrentPort);
    try {
      // After the seeder's first message: webtorrent listens for "interested" only once it has sent its bitfield.
      await waitFor('the seeder to send its (empty, super-seeding) bitfield', () => received.length > 0, 10_000, 20);
      // As aria2c does: its (empty) bitfield, then interest.
      socket.write(Buffer.concat([message(MSG.bitfield, Buffer.alloc(PIECES / 8)), message(MSG.interested)]));
      await waitFor('the seeder to unchoke the interested peer', () => received.includes(MSG.unchoke), 10_000, 20);
      expect(torrent.wires).toHaveLength(1);
      const wire = torrent.wires[0] as unknown as SeederSideWire;
      let reads = 0;
      const get = wire.peerPieces.get.bind(wire.peerPieces);
      wire.peerPieces.get = (index) => {
        reads++;
        return get(index);
      };

      // In order, as the worst case for a scan that stops at the first missing piece.
      const haves = Array.from({ length: PIECES }, (_, i) => {
        const index = Buffer.alloc(4);
        index.writeUInt32BE(i, 0);
        return message(MSG.have, index);
      });
      socket.write(Buffer.concat(haves));
      await waitFor('the seeder to choke the peer that now has every piece', () => received.lastIndexOf(MSG.choke) > received.indexOf(MSG.unchoke), 20_000, 20);

      expect(wire.isSeeder).toBe(true);
      // webtorrent's scan read about PIECES x PIECES / 2 bits here (2 million); the seeder's own count reads the
      // bitfield once when the peer might be complete, and super-seeding reads a few bits per HAVE.
      expect(reads).toBeLessThan(16 * PIECES);
    } finally {
      socket.destroy();
    }
  }, 60_000);
});
