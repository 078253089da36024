/**
 * Approximate super-seeding (after BEP 16) for the server's seeder. The server's uplink is the one link every
 * byte of the image must cross at least once; a plain seeder advertises every piece, peers pick pieces on their own,
 * and the same piece goes out to several peers before any of them can pass it on (the seeder sent ~1.6-2 copies
 * per fanout). Here the seeder advertises no pieces at first and then reveals, with HAVE messages, a few pieces
 * at a time to each peer, each piece to one peer in the first round; a peer gets more when it announces (HAVE)
 * that it completed one. When every piece has gone out once, a peer asking for more is shown all pieces and the
 * seeder is an ordinary seeder for it, so no peer can be starved by the plan, and pieces revealed to a peer that
 * left are handed out again first.
 *
 * Pure bookkeeping: the wire is an interface, webtorrent is wired in seeder-child.ts.
 */

export interface SuperSeedPeer {
  /** Whether the peer holds the piece (its bitfield and HAVE messages so far). */
  has(piece: number): boolean;
  /** Sends HAVE for the piece to this peer. */
  reveal(piece: number): void;
}

interface PeerState {
  /** Pieces revealed to this peer that it does not hold yet. */
  outstanding: Set<number>;
  /** Shown every piece: an ordinary seeder from now on. */
  open: boolean;
}

export class SuperSeedPlan {
  private readonly peers = new Map<SuperSeedPeer, PeerState>();
  /** Pieces handed out again before the cursor moves on (their peer left before completing them). */
  private readonly returned: number[] = [];
  private cursor = 0;
  private readonly handedOut: Uint8Array;

  /** `perPeer`: pieces in flight per peer, enough to keep its pipe to the seeder full. */
  constructor(
    readonly pieceCount: number,
    private readonly perPeer = 4,
  ) {
    this.handedOut = new Uint8Array(pieceCount);
  }

  add(peer: SuperSeedPeer): void {
    if (this.peers.has(peer)) return;
    this.peers.set(peer, { outstanding: new Set(), open: false });
    this.topUp(peer);
  }

  remove(peer: SuperSeedPeer): void {
    const state = this.peers.get(peer);
    this.peers.delete(peer);
    if (!state || state.open) return;
    // What this peer was given and had not announced goes to the next peers first: its copy (if any) left with it.
    for (const piece of state.outstanding) this.returned.push(piece);
  }

  /** The peer announced a piece (HAVE): its slot is free for the next one. */
  onHave(peer: SuperSeedPeer, piece: number): void {
    const state = this.peers.get(peer);
    if (!state || state.open) return;
    state.outstanding.delete(piece);
    this.topUp(peer);
  }

  /** Reveals pieces to the peer until it has `perPeer` in flight; opens it when the first round has nothing for it. */
  topUp(peer: SuperSeedPeer): void {
    const state = this.peers.get(peer);
    if (!state || state.open) return;
    for (const piece of state.outstanding) if (peer.has(piece)) state.outstanding.delete(piece);
    while (state.outstanding.size < this.perPeer) {
      const piece = this.nextFor(peer);
      if (piece === undefined) break;
      this.handedOut[piece] = 1;
      state.outstanding.add(piece);
      peer.reveal(piece);
    }
    if (state.outstanding.size === 0) {
      state.open = true;
      for (let piece = 0; piece < this.pieceCount; piece++) if (!peer.has(piece)) peer.reveal(piece);
    }
  }

  /** A returned piece, else the first never handed out piece, that the peer lacks. */
  private nextFor(peer: SuperSeedPeer): number | undefined {
    const i = this.returned.findIndex((piece) => !peer.has(piece));
    if (i >= 0) return this.returned.splice(i, 1)[0];
    while (this.cursor < this.pieceCount && this.handedOut[this.cursor] === 1) this.cursor++;
    for (let piece = this.cursor; piece < this.pieceCount; piece++) if (this.handedOut[piece] === 0 && !peer.has(piece)) return piece;
    return undefined;
  }
}
