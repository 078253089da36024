import { describe, expect, it } from 'vitest';
import { SwarmTopology } from '../../../server/images/swarm-topology.js';

const names = (n: number, prefix = 'n') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** Every member's neighbours, sorted, by member. */
function adjacency(t: SwarmTopology, members: string[]): Record<string, string[]> {
  return Object.fromEntries(members.map((m) => [m, t.neighbours(m).sort()]));
}

/** The most hops between two members (Infinity when the graph falls apart). */
function diameter(t: SwarmTopology, members: string[]): number {
  let worst = 0;
  for (const from of members) {
    const hops = new Map([[from, 0]]);
    const queue = [from];
    while (queue.length > 0) {
      const at = queue.shift()!;
      for (const next of t.neighbours(at)) {
        if (hops.has(next)) continue;
        hops.set(next, hops.get(at)! + 1);
        queue.push(next);
      }
    }
    if (hops.size < members.length) return Infinity;
    worst = Math.max(worst, ...hops.values());
  }
  return worst;
}

/** A 3-neighbour topology with batches of these sizes placed one after another (members b0n0.., b1n0..). */
function placeBatches(batches: number[]): { t: SwarmTopology; placed: string[][]; all: string[] } {
  const t = new SwarmTopology(3);
  const placed = batches.map((n, b) => names(n, `b${b}n`));
  for (const batch of placed) t.place(batch);
  return { t, placed, all: placed.flat() };
}

/** Edges are symmetric and never loop: whoever is told about a neighbour is told about by it. */
function expectSymmetric(t: SwarmTopology, members: string[]): void {
  for (const m of members) {
    expect(t.neighbours(m)).not.toContain(m);
    for (const n of t.neighbours(m)) expect(t.neighbours(n)).toContain(m);
  }
}

describe('SwarmTopology: a few neighbours per downloading node', () => {
  it('refuses fewer than 2 neighbours per node', () => {
    expect(() => new SwarmTopology(1)).toThrow(RangeError);
    expect(() => new SwarmTopology(2.5)).toThrow(RangeError);
  });

  it.each([
    { nodes: 1, degrees: [0] },
    { nodes: 2, degrees: [1, 1] },
    { nodes: 3, degrees: [2, 2, 2] },
    { nodes: 4, degrees: [3, 3, 3, 3] },
    // An odd batch cannot give everyone a chord: one member keeps the 2 of the ring.
    { nodes: 5, degrees: [3, 3, 3, 3, 2] },
    { nodes: 16, degrees: Array(16).fill(3) },
  ])('a batch of $nodes that started together: 3 neighbours each where the count allows', ({ nodes, degrees }) => {
    const t = new SwarmTopology(3);
    const members = names(nodes);
    t.place(members);
    expect(members.map((m) => t.neighbours(m).length)).toEqual(degrees);
    expectSymmetric(t, members);
    if (nodes > 1) expect(diameter(t, members)).toBeLessThan(Infinity);
  });

  it('16 nodes become the ring i±1 with chords i+8: any node reaches any other in 4 hops', () => {
    const t = new SwarmTopology(3);
    const members = names(16);
    t.place(members);
    const expected = Object.fromEntries(members.map((_, i) => [`n${i}`, [`n${(i + 1) % 16}`, `n${(i + 15) % 16}`, `n${(i + 8) % 16}`].sort()]));
    expect(adjacency(t, members)).toEqual(expected);
    expect(diameter(t, members)).toBe(4);
  });

  it.each([
    { nodes: 32, hops: 5 },
    { nodes: 200, hops: 8 },
  ])('a batch of $nodes is laid out as rings of 16 tied together: 3 or 4 neighbours each, $hops hops across', ({ nodes, hops }) => {
    const t = new SwarmTopology(3);
    const members = names(nodes);
    t.place(members);
    expectSymmetric(t, members);
    for (const m of members) expect([3, 4]).toContain(t.neighbours(m).length);
    // As one ring with one chord each it was nodes / 4 hops across (8 and 50).
    expect(diameter(t, members)).toBeLessThanOrEqual(hops);
  });

  it('2 neighbours make a ring', () => {
    const t = new SwarmTopology(2);
    const members = names(6);
    t.place(members);
    expect(adjacency(t, members)).toEqual({ n0: ['n1', 'n5'], n1: ['n0', 'n2'], n2: ['n1', 'n3'], n3: ['n2', 'n4'], n4: ['n3', 'n5'], n5: ['n0', 'n4'] });
  });

  it.each([
    { batches: [3, 13] },
    { batches: [1, 15] },
    { batches: [2, 14] },
    { batches: [4, 12] },
    { batches: [5, 11] },
    { batches: [6, 10] },
    { batches: [8, 8] },
    { batches: [3, 6, 7] },
    { batches: [7, 5, 1, 3] },
  ])('16 nodes placed in batches of $batches: 4 hops at most, 2 to 4 neighbours each, only earlier nodes over 3', ({ batches }) => {
    const { t, placed, all } = placeBatches(batches);
    expectSymmetric(t, all);
    expect(diameter(t, all)).toBeLessThanOrEqual(4);
    for (const m of all) expect(t.neighbours(m).length).toBeGreaterThanOrEqual(2);
    for (const m of all) expect(t.neighbours(m).length).toBeLessThanOrEqual(4);
    const last = new Set(placed[placed.length - 1]);
    for (const m of last) expect(t.neighbours(m).length).toBeLessThanOrEqual(3);
  });

  it('a later batch joins the earlier nodes through many edges, not through the one edge it was spliced into', () => {
    const { t, placed } = placeBatches([8, 8]);
    const [first, second] = [placed[0]!, new Set(placed[1])];
    const across = first.reduce((n, m) => n + t.neighbours(m).filter((o) => second.has(o)).length, 0);
    // The splice gives 2; every other newcomer takes a chord to an earlier node, which goes to 4 for it.
    expect(across).toBeGreaterThanOrEqual(6);
    expect(Math.max(...first.map((m) => t.neighbours(m).length))).toBe(4);
  });

  it('earlier nodes with room are joined to the farthest newcomers: no newcomer sits next to two of a first batch of 3', () => {
    const { t, placed, all } = placeBatches([3, 13]);
    const first = new Set(placed[0]);
    for (const m of placed[1]!) expect(t.neighbours(m).filter((o) => first.has(o)).length).toBeLessThanOrEqual(1);
    expect(diameter(t, all)).toBe(4);
  });

  it.each([
    { batches: [21, 11], hops: 5 },
    { batches: [100, 100], hops: 10 },
  ])('waves of $batches: any node reaches any other in $hops hops at most (9 and 51 when a wave joined through one edge)', ({ batches, hops }) => {
    const { t, all } = placeBatches(batches);
    expect(diameter(t, all)).toBeLessThanOrEqual(hops);
  });

  it('nodes that come one at a time spread the extra neighbours (about 4 each) instead of piling them on one node', () => {
    const t = new SwarmTopology(3);
    const members = names(4);
    t.place(members);
    const late = names(20, 'late');
    for (const m of late) t.place([m]);
    const all = [...members, ...late];
    expectSymmetric(t, all);
    const degrees = all.map((m) => t.neighbours(m).length);
    // Each newcomer brings 2 edges (the splice) where a batch brings 1.5 per node: the graph drifts to 4 on average.
    expect(Math.min(...degrees)).toBeGreaterThanOrEqual(2);
    expect(Math.max(...degrees)).toBeLessThanOrEqual(5);
    expect(degrees.reduce((a, b) => a + b, 0) / degrees.length).toBeLessThanOrEqual(4);
    expect(diameter(t, all)).toBeLessThan(Infinity);
  });

  it('a lone member is joined by the next batch as a ring through it', () => {
    const t = new SwarmTopology(3);
    t.place(['solo']);
    t.place(['x', 'y']);
    expect(adjacency(t, ['solo', 'x', 'y'])).toEqual({ solo: ['x', 'y'], x: ['solo', 'y'], y: ['solo', 'x'] });
  });

  it('placing a member twice changes nothing', () => {
    const t = new SwarmTopology(3);
    t.place(['a', 'b', 'c', 'd']);
    const before = adjacency(t, ['a', 'b', 'c', 'd']);
    t.place(['b', 'a', 'a']);
    expect(adjacency(t, ['a', 'b', 'c', 'd'])).toEqual(before);
    expect(t.size()).toBe(4);
  });

  it('a member whose neighbour left is given one with room when filled', () => {
    const t = new SwarmTopology(3);
    const members = names(16);
    t.place(members);
    t.remove('n0');
    expect(t.has('n0')).toBe(false);
    const orphans = ['n1', 'n15', 'n8'];
    for (const m of orphans) expect(t.neighbours(m)).toHaveLength(2);
    for (const m of orphans) t.fill(m);
    const rest = members.slice(1);
    expectSymmetric(t, rest);
    // Three members lost one neighbour; one new edge between two of them, the third has nobody with room left.
    expect(orphans.map((m) => t.neighbours(m).length).sort()).toEqual([2, 3, 3]);
    expect(Math.max(...rest.map((m) => t.neighbours(m).length))).toBe(3);
  });

  it('a member left with fewer than 2 neighbours takes the least connected ones, over the limit if need be', () => {
    const t = new SwarmTopology(3);
    const members = names(4);
    t.place(members);
    t.place(['x']);
    // x was spliced between two of the first four; both of them leave.
    const [u, v] = t.neighbours('x');
    t.remove(u!);
    t.remove(v!);
    t.fill('x');
    expect(t.neighbours('x')).toHaveLength(2);
    expectSymmetric(t, [...members.filter((m) => m !== u && m !== v), 'x']);
  });

  it('forgetting an unknown member or filling one is harmless', () => {
    const t = new SwarmTopology(3);
    t.remove('ghost');
    t.fill('ghost');
    expect(t.size()).toBe(0);
    expect(t.neighbours('ghost')).toEqual([]);
  });
});
