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
 * already have, and so have one neighbour more. The batch is then tied to the earlier nodes through more edges than
 * that one (joinMembersWithRoom, chordsAcross): through the splice alone, a second wave of 8 reached the first 8 over
 * 2 edges. A node that lost neighbours (they left) is given new ones with room when it next announces; no node is
 * left with fewer than 2 while others exist.
 *
 * Pure bookkeeping: when a batch is placed and whom to tell is decided in tracker-neighbours.ts.
 */

/** The largest batch laid out as one ring: 16 with 3 neighbours each is the circulant i±1, i+8 (4 hops across). */
export const RING_MAX = 16;

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

  /**
   * Places members that started together (in arrival order); returns those placed (not already members, once each).
   * A batch of more than RING_MAX is laid out as rings of RING_MAX tied together like later batches: one ring of n
   * with one chord each is about n/4 hops across (32 nodes: 8, 200 nodes: 50), rings of 16 tied together 5 and 8.
   */
  place(arrivals: readonly string[]): string[] {
    const batch = [...new Set(arrivals)].filter((m) => !this.has(m));
    for (let from = 0; from < batch.length; from += RING_MAX) this.placeRing(batch.slice(from, from + RING_MAX));
    return batch;
  }

  private placeRing(batch: readonly string[]): void {
    if (batch.length === 0) return;
    const earlier = this.members();
    const splice = this.spliceEdge(earlier);
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
      this.joinMembersWithRoom(earlier, batch);
      if (batch.length >= 3) this.chordsAcross(earlier, batch);
    } else if (batch.length >= 3) {
      this.connect(last, first);
    }
    for (const member of batch) this.fill(member);
  }

  /**
   * Earlier members with room take their extra neighbours from the new batch, each the newcomer farthest from it in
   * hops. Left to the newcomers' own fill, the first of the batch (already next to the splice edge) took them, and
   * the earlier members ended up as a knot with few edges out (measured: 3 nodes that started 300 ms before 13 others
   * made every run of 16 2-5 s slower).
   */
  private joinMembersWithRoom(earlier: readonly string[], batch: readonly string[]): void {
    for (const member of earlier) {
      while (this.degreeOf(member) < this.degree) {
        const partner = this.farthestInHops(member, batch, (other) => this.degreeOf(other) < this.degree);
        if (partner === undefined) break;
        this.connect(member, partner);
      }
    }
  }

  /**
   * Each newcomer that still has room takes a chord to an earlier member (the farthest in hops), which may go one
   * over `degree` for it, once per batch. Spliced into one edge alone, a batch of 8 joined 8 earlier nodes through 2
   * edges, and half of every piece the server injected had to cross them.
   */
  private chordsAcross(earlier: readonly string[], batch: readonly string[]): void {
    const stretched = new Set<string>();
    for (const [index, member] of batch.entries()) {
      if (index % 2 === 0 || this.degreeOf(member) >= this.degree) continue;
      const partner = this.farthestInHops(member, earlier, (other) => !stretched.has(other) && this.degreeOf(other) <= this.degree);
      if (partner === undefined) return;
      if (this.degreeOf(partner) >= this.degree) stretched.add(partner);
      this.connect(member, partner);
    }
  }

  /** Of `among`, the eligible member not yet next to `from` that is the most hops away (unreachable: farthest of all). */
  private farthestInHops(from: string, among: readonly string[], eligible: (other: string) => boolean): string | undefined {
    const hops = this.hopsFrom(from);
    const mine = this.edges.get(from)!;
    let best: string | undefined;
    let bestHops = -1;
    for (const other of among) {
      if (other === from || mine.has(other) || !eligible(other)) continue;
      const h = hops.get(other) ?? Infinity;
      if (h > bestHops) [best, bestHops] = [other, h];
    }
    return best;
  }

  /** Hops from `from` to every member it reaches. */
  private hopsFrom(from: string): Map<string, number> {
    const hops = new Map([[from, 0]]);
    const queue = [from];
    for (let i = 0; i < queue.length; i++) {
      const at = queue[i]!;
      for (const next of this.edges.get(at) ?? []) {
        if (hops.has(next)) continue;
        hops.set(next, hops.get(at)! + 1);
        queue.push(next);
      }
    }
    return hops;
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
