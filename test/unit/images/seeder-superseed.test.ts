import { describe, expect, it } from 'vitest';
import { SuperSeedPlan, type SuperSeedPeer } from '../../../server/images/seeder-superseed.js';
import { piecesWithin } from '../../../server/images/torrent.js';

/** A peer as the plan sees it: what it holds and what it was shown, in order. */
function peer(holds: number[] = []): SuperSeedPeer & { got: Set<number>; shown: number[]; complete(piece: number): void } {
  const got = new Set(holds);
  const shown: number[] = [];
  return { got, shown, has: (i) => got.has(i), reveal: (i) => shown.push(i), complete: (i) => got.add(i), held: () => got.size };
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
    for (let guard = 0; a.got.size < 10 && guard < 100; guard++) {
      const next = a.shown.find((i) => !a.got.has(i));
      if (next === undefined) break;
      a.complete(next);
      plan.onHave(a, next);
    }
    expect([...a.got].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('skips pieces the web seed already sent whole: they are in the swarm, the first round does not send them again', () => {
    const plan = new SuperSeedPlan(8, 2);
    plan.markHandedOut(0);
    plan.markHandedOut(3);
    plan.markHandedOut(99); // out of range: ignored
    const a = peer();
    const b = peer();
    plan.add(a);
    plan.add(b);
    expect(a.shown).toEqual([1, 2]);
    expect(b.shown).toEqual([4, 5]);
  });

  it('counts the pieces the first round has handed out, each once, web seed included', () => {
    const plan = new SuperSeedPlan(8, 2);
    expect(plan.firstRoundPieces()).toBe(0);
    plan.markHandedOut(5);
    plan.markHandedOut(5);
    plan.markHandedOut(-1);
    const a = peer();
    plan.add(a);
    expect(plan.firstRoundPieces()).toBe(3);
    for (const piece of [0, 1, 2, 3, 4, 6, 7]) {
      a.complete(piece);
      plan.onHave(a, piece);
    }
    // Opened at the end: the pieces shown again are not counted a second time.
    expect(plan.firstRoundPieces()).toBe(8);
    expect(a.got.size).toBe(7);
  });

  it('a piece marked while a peer is already fetching it stays with that peer (no piece is shown twice in round one)', () => {
    const plan = new SuperSeedPlan(4, 2);
    const a = peer();
    plan.add(a);
    plan.markHandedOut(1);
    const b = peer();
    plan.add(b);
    expect(a.shown).toEqual([0, 1]);
    expect(b.shown).toEqual([2, 3]);
  });
});

describe('SuperSeedPlan.rebalance: the seeder feeds the peers that are behind', () => {
  it('a peer well ahead of the median gets one piece in flight, the others their full window', () => {
    const plan = new SuperSeedPlan(256, 4);
    // 256 pieces: "ahead" means more than median + 4 pieces.
    const ahead = peer(Array.from({ length: 40 }, (_, i) => 200 + (i % 56)));
    const even = [peer(), peer(), peer()];
    for (const p of [ahead, ...even]) plan.add(p);
    plan.rebalance();
    // Completing its piece frees the slot, but an ahead peer is topped up to 1, not 4.
    for (const piece of [...ahead.shown]) {
      ahead.complete(piece);
      plan.onHave(ahead, piece);
    }
    const before = ahead.shown.length;
    const nowOutstanding = ahead.shown.filter((i) => !ahead.got.has(i)).length;
    expect(nowOutstanding).toBe(1);
    expect(before).toBeGreaterThan(4);
    for (const p of even) expect(p.shown.filter((i) => !p.got.has(i))).toHaveLength(4);
  });

  it('peers in step with each other are not told apart', () => {
    const plan = new SuperSeedPlan(256, 4);
    const a = peer([0, 1, 2]);
    const b = peer([3, 4]);
    plan.add(a);
    plan.add(b);
    plan.rebalance();
    a.complete(a.shown[0]!);
    plan.onHave(a, a.shown[0]!);
    expect(a.shown.filter((i) => !a.got.has(i))).toHaveLength(4);
  });

  it('a peer that falls behind gets more in flight the further behind it is', () => {
    const plan = new SuperSeedPlan(256, 4);
    const runner = peer(Array.from({ length: 30 }, (_, i) => 200 + i));
    const others = [peer(), peer()];
    for (const p of [runner, ...others]) plan.add(p);
    plan.rebalance();
    const piece = runner.shown[0]!;
    runner.complete(piece);
    plan.onHave(runner, piece);
    expect(runner.shown.filter((i) => !runner.got.has(i)).length).toBeLessThanOrEqual(3);
    // The others overtake it (40 pieces from peers): the runner is 10 pieces behind the median, slack 256/64 = 4,
    // so it gets (1 + floor(10 / 4)) x 4 = 12 pieces in flight.
    for (const p of others) for (let i = 100; i < 140; i++) p.complete(i);
    plan.rebalance();
    expect(runner.shown.filter((i) => !runner.got.has(i))).toHaveLength(12);
  });

  it('a straggler far behind gets at most 8 x the usual window', () => {
    const plan = new SuperSeedPlan(2048, 4);
    const straggler = peer();
    const others = [peer(Array.from({ length: 1000 }, (_, i) => i)), peer(Array.from({ length: 1000 }, (_, i) => i))];
    for (const p of [straggler, ...others]) plan.add(p);
    plan.rebalance();
    expect(straggler.shown.filter((i) => !straggler.got.has(i))).toHaveLength(32);
  });
});

describe('SuperSeedPlan after the first round: the seeder opens to the stragglers first', () => {
  const setup = () => {
    let clock = 0;
    const plan = new SuperSeedPlan(256, 4, () => clock);
    // Every piece already went out (the web seed, say): the first round has nothing for anyone.
    for (let i = 0; i < 256; i++) plan.markHandedOut(i);
    const ahead = peer(Array.from({ length: 200 }, (_, i) => i));
    const behind = [peer(Array.from({ length: 50 }, (_, i) => i)), peer(Array.from({ length: 60 }, (_, i) => i))];
    for (const p of behind) plan.add(p);
    plan.rebalance();
    plan.add(ahead);
    plan.rebalance();
    return { plan, ahead, behind, tick: (ms: number) => (clock += ms) };
  };

  it('the peers behind are shown every piece they lack; the peer ahead is shown nothing yet', () => {
    const { ahead, behind } = setup();
    for (const p of behind) expect(p.shown).toHaveLength(256 - p.got.size);
    expect(ahead.shown).toEqual([]);
  });

  it('the peer ahead is opened once the others caught up', () => {
    const { plan, ahead, behind } = setup();
    for (const p of behind) for (let i = 0; i < 200; i++) p.complete(i);
    plan.rebalance();
    expect(ahead.shown).toHaveLength(56);
  });

  it('and after 5 s at most, so stalled peers cannot starve it', () => {
    const { plan, ahead, tick } = setup();
    tick(4000);
    plan.rebalance();
    expect(ahead.shown).toEqual([]);
    tick(1500);
    plan.rebalance();
    expect(ahead.shown).toHaveLength(56);
  });
});

describe('piecesWithin: pieces a web-seed byte range delivered whole', () => {
  const KiB = 1024;
  it.each([
    { range: [0, 256 * KiB], expected: [0], why: 'exactly one piece' },
    { range: [0, 256 * KiB - 1], expected: [], why: 'one byte short' },
    { range: [100, 768 * KiB], expected: [1, 2], why: 'starts inside piece 0' },
    { range: [512 * KiB, 1024 * KiB + 10], expected: [2, 3], why: 'clipped at the end of the file' },
    { range: [768 * KiB, 1000 * KiB], expected: [3], why: 'the short last piece of a 1000 KiB file' },
    { range: [0, 2000 * KiB], expected: [0, 1, 2, 3], why: 'past the end is clipped to the file' },
    { range: [10, 10], expected: [], why: 'empty range' },
  ])('$why', ({ range, expected }) => {
    expect(piecesWithin(range[0]!, range[1]!, 256 * KiB, 1000 * KiB)).toEqual(expected);
  });

  it('refuses nonsense without throwing', () => {
    expect(piecesWithin(0, 100, 0, 100)).toEqual([]);
    expect(piecesWithin(-5, 100, 10, 100)).toEqual([]);
    expect(piecesWithin(Number.NaN, 100, 10, 100)).toEqual([]);
  });
});
