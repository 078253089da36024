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
  /** How many pieces the peer holds (optional: a peer without it is never counted as ahead). */
  held?(): number;
}

interface PeerState {
  /** Pieces revealed to this peer that it does not hold yet. */
  outstanding: Set<number>;
  /** Shown every piece: an ordinary seeder from now on. */
  open: boolean;
  /** Since when (ms) the first round had nothing for this peer while it was ahead of the swarm. */
  waitingSince?: number;
}

/** An ahead peer waits at most this long for the seeder: stalled peers must not hold it back by keeping the median low. */
const AHEAD_WAIT_MS = 5000;
/** A straggler has at most this many times the usual pieces in flight from the seeder. */
const MAX_WINDOW_FACTOR = 8;

export class SuperSeedPlan {
  private readonly peers = new Map<SuperSeedPeer, PeerState>();
  /** Pieces handed out again before the cursor moves on (their peer left before completing them). */
  private readonly returned: number[] = [];
  private cursor = 0;
  private readonly handedOut: Uint8Array;
  private handedOutCount = 0;
  /** Peers holding more than this many pieces are ahead of the swarm (rebalance sets it); Infinity: nobody is. */
  private aheadAbove = Infinity;
  /** The median peer's piece count (rebalance sets it). */
  private median = 0;
  /** 1/64 of the image: peers in step with the swarm are not told apart by a piece or two. */
  private readonly slack: number;

  /** `perPeer`: pieces in flight per peer, enough to keep its pipe to the seeder full. */
  constructor(
    readonly pieceCount: number,
    private readonly perPeer = 4,
    private readonly now: () => number = Date.now,
  ) {
    this.handedOut = new Uint8Array(pieceCount);
    this.slack = Math.max(2, Math.ceil(pieceCount / 64));
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

  /** The seeder sent the peer every block of a piece: its slot is free for the next one (the HAVE may come later). */
  onDelivered(peer: SuperSeedPeer, piece: number): void {
    this.onHave(peer, piece);
  }

  /** The peer announced a piece (HAVE): its slot is free for the next one. */
  onHave(peer: SuperSeedPeer, piece: number): void {
    const state = this.peers.get(peer);
    if (!state || state.open) return;
    state.outstanding.delete(piece);
    this.topUp(peer);
  }

  /**
   * The piece already left the server another way (the web seed sent it whole to a node): it is in the swarm, so the
   * first round skips it instead of sending it a second time over the same uplink.
   */
  markHandedOut(piece: number): void {
    if (Number.isInteger(piece) && piece >= 0 && piece < this.pieceCount) this.handOut(piece);
  }

  /** Pieces the first round has handed out: revealed to one peer, or sent whole by the web seed. */
  firstRoundPieces(): number {
    return this.handedOutCount;
  }

  private handOut(piece: number): void {
    if (this.handedOut[piece] === 1) return;
    this.handedOut[piece] = 1;
    this.handedOutCount++;
  }

  /**
   * Called every few hundred milliseconds: peers clearly ahead of the median peer get one piece in flight instead
   * of `perPeer`, so the seeder's uplink goes to the peers that are behind. A node that BitTorrent's choking left
   * without peers early on (it waits for the next rechoke round, 10 s in aria2c) is fed by the seeder meanwhile, and
   * the unique pieces it then holds make the others trade with it. When the first round is over, the seeder is
   * opened to the peers that are behind first; a peer ahead waits (up to AHEAD_WAIT_MS at a time) until the swarm
   * catches up, so the seeder's uplink goes to the stragglers at the end too. Measured: the slowest of 8 nodes 6 s
   * behind the rest without this.
   */
  rebalance(): void {
    const counts: number[] = [];
    for (const peer of this.peers.keys()) if (peer.held) counts.push(peer.held());
    if (counts.length < 2) {
      this.aheadAbove = Infinity;
      return;
    }
    counts.sort((a, b) => a - b);
    this.median = counts[counts.length >> 1]!;
    this.aheadAbove = this.median + this.slack;
    for (const peer of this.peers.keys()) this.topUp(peer);
  }

  private isAhead(peer: SuperSeedPeer): boolean {
    return peer.held !== undefined && peer.held() > this.aheadAbove;
  }

  /** One piece for a peer ahead, `perPeer` for one in step, up to 8 x that for one far behind (its pipe stays full). */
  private windowFor(peer: SuperSeedPeer): number {
    if (this.isAhead(peer)) return 1;
    const behind = peer.held ? this.median - peer.held() : 0;
    return this.perPeer * Math.min(MAX_WINDOW_FACTOR, 1 + Math.max(0, Math.floor(behind / this.slack)));
  }

  /**
   * Reveals pieces to the peer until it has its window in flight. When the first round has nothing for it, the peer
   * is opened (shown every piece it lacks), unless it is ahead of the swarm: then it waits for the others first.
   */
  topUp(peer: SuperSeedPeer): void {
    const state = this.peers.get(peer);
    if (!state || state.open) return;
    for (const piece of state.outstanding) if (peer.has(piece)) state.outstanding.delete(piece);
    const window = this.windowFor(peer);
    while (state.outstanding.size < window) {
      const piece = this.nextFor(peer);
      if (piece === undefined) break;
      this.handOut(piece);
      state.outstanding.add(piece);
      peer.reveal(piece);
    }
    if (state.outstanding.size === 0) {
      if (this.isAhead(peer)) {
        state.waitingSince ??= this.now();
        if (this.now() - state.waitingSince < AHEAD_WAIT_MS) return;
      }
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
