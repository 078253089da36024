/**
 * Wires SuperSeedPlan into a webtorrent torrent of the seeder child. webtorrent has no super-seeding, so this hooks
 * the peer wire (bittorrent-protocol): when webtorrent advertises "have-all" (or a full bitfield) on a new wire,
 * "have-none" (an empty bitfield) goes out instead, and the plan reveals pieces with HAVE messages. Requests are
 * served by webtorrent as before (a peer only asks for what it was shown).
 */
import type { Torrent } from 'webtorrent';
import { SuperSeedPlan, type SuperSeedPeer } from './seeder-superseed.js';

/** The parts of bittorrent-protocol's Wire used here (not in server/types/bittorrent.d.ts). */
interface PeerWire {
  hasFast: boolean;
  isSeeder: boolean;
  peerPieces: { get(index: number): boolean };
  choke(): void;
  listeners(event: 'have'): Array<(index: number) => void>;
  off(event: 'have', listener: (index: number) => void): void;
  haveAll(): void;
  haveNone(): void;
  bitfield(bitfield: Uint8Array | { buffer: Uint8Array }): void;
  have(index: number): void;
  piece(index: number, offset: number, buffer: Uint8Array): void;
  on(event: 'have', listener: (index: number) => void): void;
  on(event: 'bitfield' | 'have-all' | 'have-none', listener: () => void): void;
  once(event: 'close', listener: () => void): void;
}

interface TorrentInternals {
  pieces: unknown[];
  pieceLength: number;
  lastPieceLength: number;
}

/** Pieces in flight per peer: 4 x 256 KiB keeps a LAN peer's pipe full and still spreads a round widely. */
const PIECES_PER_PEER = 4;
/** Rebalances the windows (and catches peers whose bitfield changed what they lack without a HAVE for their piece). */
const REBALANCE_MS = 500;

export interface SuperSeeding {
  /** The piece reached a node another way (the web seed): the first round skips it. */
  markHandedOut(piece: number): void;
  /** Pieces the first round has handed out, and how many there are (undefined before the first peer). */
  firstRound(): { pieces: number; of: number } | undefined;
}

export function superSeed(torrent: Torrent): SuperSeeding {
  let plan: SuperSeedPlan | undefined;
  /** Marked before the first peer came (the plan needs the piece count, known once the torrent is verified). */
  const early: number[] = [];

  const join = (wire: PeerWire) => {
    // Only a complete seeder plans; webtorrent advertises whatever it has otherwise (and seeder-child drops it).
    if (torrent.progress < 1) return;
    if (!plan) {
      plan = new SuperSeedPlan((torrent as unknown as TorrentInternals).pieces.length, PIECES_PER_PEER);
      for (const piece of early.splice(0)) plan.markHandedOut(piece);
    }
    const p = plan;
    let held = 0;
    const count = () => {
      held = 0;
      for (let i = 0; i < p.pieceCount; i++) if (wire.peerPieces.get(i)) held++;
    };
    count();
    const peer: SuperSeedPeer = { has: (i) => wire.peerPieces.get(i), reveal: (i) => wire.have(i), held: () => held };
    // webtorrent's own HAVE handlers scan the whole bitfield on every HAVE (is the peer a seed now? is this torrent
    // interested in it?) and keep a rarity map for choosing pieces to download: a complete seeder learns nothing from
    // them. 16 nodes' HAVEs for 4096 pieces cost its process 2.4 s of CPU per install (profiled), on the host
    // whose uplink is the swarm's bottleneck. The count kept here answers the one question that matters.
    for (const listener of wire.listeners('have')) wire.off('have', listener);
    let complete = false;
    wire.on('have', (i) => {
      held++;
      if (!complete && held >= p.pieceCount) {
        // A HAVE can repeat a piece the bitfield already had: recount before calling the peer complete.
        count();
        if (held >= p.pieceCount) {
          // As webtorrent does on the HAVE that completes a peer: a seed is choked (it wants nothing from us).
          complete = true;
          wire.isSeeder = true;
          wire.choke();
        }
      }
      p.onHave(peer, i);
    });
    wire.on('bitfield', () => {
      count();
      p.topUp(peer);
    });
    // aria2c sends HAVEs in batches (20 pieces, or after 10 s), so waiting for the HAVE of a revealed piece would
    // leave this peer's pipe from the seeder idle between batches: the seeder counts what it sent instead.
    const internals = torrent as unknown as TorrentInternals;
    const sent = new Map<number, number>();
    const piece = wire.piece.bind(wire);
    wire.piece = (index, offset, buffer) => {
      piece(index, offset, buffer);
      const bytes = (sent.get(index) ?? 0) + buffer.length;
      const whole = index === internals.pieces.length - 1 ? internals.lastPieceLength : internals.pieceLength;
      if (bytes < whole) {
        sent.set(index, bytes);
        return;
      }
      sent.delete(index);
      p.onDelivered(peer, index);
    };
    wire.once('close', () => {
      p.remove(peer);
    });
    p.add(peer);
  };

  torrent.on('wire', (w: unknown) => {
    const wire = w as PeerWire;
    const haveAll = wire.haveAll.bind(wire);
    const bitfield = wire.bitfield.bind(wire);
    const restore = () => {
      wire.haveAll = haveAll;
      wire.bitfield = bitfield;
    };
    // webtorrent sends exactly one of the two right after the handshake (Torrent._onWireWithMetadata).
    wire.haveAll = () => {
      restore();
      if (torrent.progress < 1) return haveAll();
      wire.haveNone();
      join(wire);
    };
    wire.bitfield = (bf) => {
      restore();
      if (torrent.progress < 1) return bitfield(bf);
      const bytes = bf instanceof Uint8Array ? bf : bf.buffer;
      bitfield(new Uint8Array(bytes.length));
      join(wire);
    };
  });

  const timer = setInterval(() => plan?.rebalance(), REBALANCE_MS);
  timer.unref();
  torrent.once('close', () => clearInterval(timer));
  return {
    markHandedOut(piece) {
      if (plan) plan.markHandedOut(piece);
      else early.push(piece);
    },
    firstRound: () => (plan ? { pieces: plan.firstRoundPieces(), of: plan.pieceCount } : undefined),
  };
}
