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
  peerPieces: { get(index: number): boolean };
  haveAll(): void;
  haveNone(): void;
  bitfield(bitfield: Uint8Array | { buffer: Uint8Array }): void;
  have(index: number): void;
  on(event: 'have', listener: (index: number) => void): void;
  on(event: 'bitfield' | 'have-all' | 'have-none', listener: () => void): void;
  once(event: 'close', listener: () => void): void;
}

interface TorrentInternals {
  pieces: unknown[];
}

/** Pieces in flight per peer: 4 x 256 KiB keeps a LAN peer's pipe full and still spreads a round widely. */
const PIECES_PER_PEER = 4;
/** Catches peers whose bitfield or HAVEs changed what they lack without a HAVE for a piece they were given. */
const TOP_UP_MS = 2000;

export function superSeed(torrent: Torrent): void {
  let plan: SuperSeedPlan | undefined;
  const peers = new Set<SuperSeedPeer>();

  const join = (wire: PeerWire) => {
    // Only a complete seeder plans; webtorrent advertises whatever it has otherwise (and seeder-child drops it).
    if (torrent.progress < 1) return;
    plan ??= new SuperSeedPlan((torrent as unknown as TorrentInternals).pieces.length, PIECES_PER_PEER);
    const p = plan;
    const peer: SuperSeedPeer = { has: (i) => wire.peerPieces.get(i), reveal: (i) => wire.have(i) };
    peers.add(peer);
    wire.on('have', (i) => p.onHave(peer, i));
    wire.on('bitfield', () => p.topUp(peer));
    wire.once('close', () => {
      peers.delete(peer);
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

  const timer = setInterval(() => {
    for (const peer of peers) plan?.topUp(peer);
  }, TOP_UP_MS);
  timer.unref();
  torrent.once('close', () => clearInterval(timer));
}
