/**
 * Which peers a downloading node is told about, when the tracker gives each node a few neighbours instead of the
 * whole swarm. aria2c uploads to 3 peers at a time (its regular unchoke slots; the optimistic one moves every 30 s)
 * and picks the 3 that upload the most to it. When everyone knows everyone, who gets picked is a lottery for the
 * first seconds, and a node few peers picked starts behind and stays behind: its link is no faster than the rate
 * the server injects new pieces, so it never catches up (measured: the last of 16 nodes 2-10 s behind the median).
 * With exactly 3 neighbours each, every node uploads to all of its neighbours and all of them upload to it.
 *
 * The graph: a batch of nodes that started together is laid out as a ring in arrival order, and each node gets
 * chords to the farthest members that still have room (a ring of 16 with 3 neighbours each becomes the circulant
 * graph i±1, i+8: any node reaches any other in 4 hops). A later batch is spliced into an existing edge u-v of the
 * graph (u-first, last-v): u and v keep their old edge, since the tracker cannot make nodes drop a connection they
 * already have, and so have one neighbour more. A node that lost neighbours (they left) is given new ones with room
 * when it next announces; no node is left with fewer than 2 while others exist.
 *
 * Pure bookkeeping: when a batch is placed and whom to tell is decided in tracker-neighbours.ts.
 */

interface Placement {
  /** Which batch the member came in, and its position in it (for the ring distance between members). */
  batch: number;
  index: number;
  batchSize: number;
}

export class SwarmTopology {
  private readonly edges = new Map<string, Set<string>>();
  private readonly placements = new Map<string, Placement>();
  private batches = 0;

  /** `degree`: the neighbours each member should have (at least 2). */
  constructor(readonly degree: number) {
    if (!Number.isInteger(degree) || degree < 2) throw new RangeError(`a swarm topology needs at least 2 neighbours per node, not ${degree}`);
  }

  has(member: string): boolean {
    return this.placements.has(member);
  }

  size(): number {
    return this.placements.size;
  }

  members(): string[] {
    return [...this.placements.keys()];
  }

  neighbours(member: string): string[] {
    return [...(this.edges.get(member) ?? [])];
  }

  /** Places members that started together (in arrival order); returns those placed (not already members, once each). */
  place(arrivals: readonly string[]): string[] {
    const batch = [...new Set(arrivals)].filter((m) => !this.has(m));
    if (batch.length === 0) return batch;
    const splice = this.spliceEdge(this.members());
    const id = this.batches++;
    batch.forEach((member, index) => {
      this.placements.set(member, { batch: id, index, batchSize: batch.length });
      this.edges.set(member, new Set());
    });
    for (let i = 1; i < batch.length; i++) this.connect(batch[i - 1]!, batch[i]!);
    const first = batch[0]!;
    const last = batch[batch.length - 1]!;
    if (splice) {
      this.connect(splice[0], first);
      this.connect(last, splice[1]);
    } else if (batch.length >= 3) {
      this.connect(last, first);
    }
    for (const member of batch) this.fill(member);
    return batch;
  }

  /** Forgets a member (it left the swarm); its neighbours get new ones when they are next filled. */
  remove(member: string): void {
    for (const other of this.edges.get(member) ?? []) this.edges.get(other)?.delete(member);
    this.edges.delete(member);
    this.placements.delete(member);
  }

  /**
   * Tops a member up to `degree` neighbours from the members that have room, farthest first; a member still short
   * of 2 (its neighbours left and nobody has room) takes the least connected members anyway.
   */
  fill(member: string): void {
    const mine = this.edges.get(member);
    if (!mine) return;
    while (mine.size < this.degree) {
      const partner = this.farthest(member, (other) => this.degreeOf(other) < this.degree);
      if (partner === undefined) break;
      this.connect(member, partner);
    }
    const floor = Math.min(2, this.placements.size - 1);
    while (mine.size < floor) {
      const partner = this.leastConnected(member);
      if (partner === undefined) break;
      this.connect(member, partner);
    }
  }

  private degreeOf(member: string): number {
    return this.edges.get(member)?.size ?? 0;
  }

  private connect(a: string, b: string): void {
    if (a === b) return;
    this.edges.get(a)?.add(b);
    this.edges.get(b)?.add(a);
  }

  /** Members of another batch are farther than any member of one's own; within a batch, distance around its ring. */
  private distance(a: string, b: string): number {
    const pa = this.placements.get(a)!;
    const pb = this.placements.get(b)!;
    if (pa.batch !== pb.batch) return Infinity;
    const d = Math.abs(pa.index - pb.index);
    return Math.min(d, pa.batchSize - d);
  }

  private candidates(member: string): string[] {
    const mine = this.edges.get(member)!;
    return [...this.placements.keys()].filter((other) => other !== member && !mine.has(other));
  }

  private farthest(member: string, eligible: (other: string) => boolean): string | undefined {
    let best: string | undefined;
    let bestDistance = -1;
    for (const other of this.candidates(member)) {
      if (!eligible(other)) continue;
      const d = this.distance(member, other);
      if (d > bestDistance) [best, bestDistance] = [other, d];
    }
    return best;
  }

  private leastConnected(member: string): string | undefined {
    let best: string | undefined;
    for (const other of this.candidates(member)) if (best === undefined || this.degreeOf(other) < this.degreeOf(best)) best = other;
    return best;
  }

  /**
   * The edge a new batch is spliced into: the one whose busier end has the fewest neighbours, then the fewest in all
   * (earliest placed on ties), so the extra neighbour goes round instead of piling up on one member. Without an
   * edge (one lone member, or members whose neighbours all left), the least connected member on both sides.
   */
  private spliceEdge(members: string[]): [string, string] | undefined {
    if (members.length === 0) return undefined;
    let best: [string, string] | undefined;
    let bestLoad = Infinity;
    for (const u of members) {
      for (const v of this.edges.get(u)!) {
        const [du, dv] = [this.degreeOf(u), this.degreeOf(v)];
        const load = Math.max(du, dv) * 1_000_000 + du + dv;
        if (load < bestLoad) [best, bestLoad] = [[u, v], load];
      }
    }
    if (best) return best;
    const lone = members.reduce((a, b) => (this.degreeOf(b) < this.degreeOf(a) ? b : a));
    return [lone, lone];
  }
}
