import { describe, expect, it } from 'vitest';
import { SuperSeedPlan, type SuperSeedPeer } from '../../../server/images/seeder-superseed.js';

/** A peer as the plan sees it: what it holds and what it was shown, in order. */
function peer(holds: number[] = []): SuperSeedPeer & { held: Set<number>; shown: number[]; complete(piece: number): void } {
  const held = new Set(holds);
  const shown: number[] = [];
  return { held, shown, has: (i) => held.has(i), reveal: (i) => shown.push(i), complete: (i) => held.add(i) };
}

describe('SuperSeedPlan: approximate super-seeding', () => {
  it('shows each peer a few pieces, each piece to one peer, in the first round', () => {
    const plan = new SuperSeedPlan(16, 2);
    const a = peer();
    const b = peer();
    plan.add(a);
    plan.add(b);
    expect(a.shown).toEqual([0, 1]);
    expect(b.shown).toEqual([2, 3]);
  });

  it('a HAVE for a shown piece frees a slot for the next unshown piece', () => {
    const plan = new SuperSeedPlan(16, 2);
    const a = peer();
    const b = peer();
    plan.add(a);
    plan.add(b);
    a.complete(0);
    plan.onHave(a, 0);
    expect(a.shown).toEqual([0, 1, 4]);
    // A piece the peer got from another peer (b's piece 2, passed on) also counts as done for its slots.
    b.complete(2);
    plan.onHave(b, 2);
    expect(b.shown).toEqual([2, 3, 5]);
  });

  it('skips pieces a peer already holds (a restarted node) and leaves them for others', () => {
    const plan = new SuperSeedPlan(8, 2);
    const restarted = peer([0, 1, 2]);
    const fresh = peer();
    plan.add(restarted);
    plan.add(fresh);
    expect(restarted.shown).toEqual([3, 4]);
    expect(fresh.shown).toEqual([0, 1]);
  });

  it('gives a departed peer\'s pieces to the next peers first: its copy left with it', () => {
    const plan = new SuperSeedPlan(16, 2);
    const a = peer();
    const b = peer();
    const c = peer([0]);
    plan.add(a);
    plan.add(b);
    plan.remove(a);
    b.complete(2);
    plan.onHave(b, 2);
    expect(b.shown).toEqual([2, 3, 0]);
    // c already holds 0 (from a, say): it gets the other returned piece, then new ones.
    plan.add(c);
    expect(c.shown).toEqual([1, 4]);
  });

  it('once the first round has nothing left for a peer, it is shown everything it lacks (an ordinary seeder)', () => {
    const plan = new SuperSeedPlan(4, 2);
    const a = peer();
    const b = peer();
    plan.add(a);
    plan.add(b);
    a.complete(0);
    a.complete(1);
    plan.onHave(a, 0);
    plan.onHave(a, 1);
    // Pieces 2 and 3 went to b; a has nothing in flight and the round is out: a sees 2 and 3 too.
    expect(a.shown).toEqual([0, 1, 2, 3]);
    // An open peer is left alone from then on.
    plan.onHave(a, 2);
    expect(a.shown).toEqual([0, 1, 2, 3]);
  });

  it('a lone peer gets the whole image, a window at a time', () => {
    const plan = new SuperSeedPlan(10, 3);
    const a = peer();
    plan.add(a);
    for (let guard = 0; a.held.size < 10 && guard < 100; guard++) {
      const next = a.shown.find((i) => !a.held.has(i));
      if (next === undefined) break;
      a.complete(next);
      plan.onHave(a, next);
    }
    expect([...a.held].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
