import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { foldLifecycle } from '../../server/lifecycle/reducer.js';
import { isRackseedError } from '../../server/model/errors.js';
import type { LifecycleEvent } from '../../server/model/lifecycle.js';
import type { Lease, NewEvent, ObservedStore, RecordResult, Run, RunQuery } from '../../server/store/types.js';

/**
 * The behaviour every ObservedStore must have. Backend-neutral on purpose: the PostgreSQL store runs this suite
 * unchanged, so nothing here may know about files, pragmas or SQL. Durability and migrations of a particular
 * backend belong in that backend's own tests.
 */
export type StoreFactory = () => Promise<{
  store: ObservedStore;
  cleanup: () => Promise<void>;
  /**
   * Opens another store on the same data (a second connection to the same file or database), as a second server
   * sharing the store would. The contract closes what it opens, before cleanup.
   */
  openSibling: () => Promise<ObservedStore>;
}>;

const MAC_A = '52:54:00:00:00:0a';
const MAC_B = '52:54:00:00:00:0b';
const MAC_C = '52:54:00:00:00:0c';

const discovered = (mac: string, facts: Record<string, string | number | boolean | null> = {}): LifecycleEvent => ({
  type: 'discovered',
  mac,
  facts,
});

/** Events that take a node from nothing to ready. */
const TO_READY: LifecycleEvent[] = [
  discovered(MAC_A, { product: 'R650' }),
  { type: 'assigned', group: 'compute' },
  { type: 'provision_started' },
  { type: 'stage', stage: 'download' },
  { type: 'installed' },
  { type: 'configure_started' },
  { type: 'ready' },
];

function okResult(r: RecordResult | undefined): Extract<RecordResult, { ok: true }> {
  if (!r?.ok) throw new Error(`expected an accepted event, got ${JSON.stringify(r)}`);
  return r;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isRackseedError(err) ? err.code : err).toBe(code);
}

export function describeStoreContract(name: string, factory: StoreFactory): void {
  describe(`ObservedStore contract: ${name}`, () => {
    let store: ObservedStore;
    let cleanup: () => Promise<void>;
    let openSibling: () => Promise<ObservedStore>;

    beforeEach(async () => {
      ({ store, cleanup, openSibling } = await factory());
    });

    afterEach(async () => {
      await cleanup();
    });

    async function record(node: string, events: readonly LifecycleEvent[], at = 1_000): Promise<void> {
      for (const [i, event] of events.entries()) okResult(await store.recordEvent({ node, event, at: at + i }));
    }

    describe('schema', () => {
      it('migrate() can run again on a live store without losing data', async () => {
        await record('n1', TO_READY.slice(0, 2));
        await store.migrate();
        await store.migrate();
        expect((await store.getNode('n1'))?.state).toBe('assigned');
        expect(await store.listEvents()).toHaveLength(2);
      });
    });

    describe('events and status', () => {
      it('appends an event and folds it into the status', async () => {
        const r = okResult(await store.recordEvent({ node: MAC_A, event: discovered(MAC_A, { serial: 'S1' }), at: 5_000 }));

        expect(r.event).toMatchObject({ node: MAC_A, at: 5_000, event: discovered(MAC_A, { serial: 'S1' }) });
        expect(r.event.id).toBeGreaterThan(0);
        expect(r.status).toMatchObject({
          id: MAC_A,
          state: 'discovered',
          mac: MAC_A,
          reimageRequested: false,
          facts: { serial: 'S1' },
          updatedAt: 5_000,
        });
        expect(await store.getNode(MAC_A)).toEqual(r.status);
      });

      it('walks the whole lifecycle, ids strictly increasing', async () => {
        const results: RecordResult[] = [];
        for (const [i, event] of TO_READY.entries()) results.push(await store.recordEvent({ node: 'n1', event, at: 1_000 + i }));

        const ids = results.map((r) => okResult(r).event.id);
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
        expect(new Set(ids).size).toBe(ids.length);
        const status = await store.getNode('n1');
        expect(status).toMatchObject({ id: 'n1', state: 'ready', mac: MAC_A, facts: { product: 'R650' }, updatedAt: 1_006 });
        expect(status?.stage).toBeUndefined();
        expect((await store.listEvents({ node: 'n1' })).map((e) => e.event.type)).toEqual(TO_READY.map((e) => e.type));
      });

      it('round-trips event payloads and timestamps exactly', async () => {
        const events: LifecycleEvent[] = [
          discovered(MAC_A, { cores: 64, gpu: false, bmc: null, product: 'X' }),
          { type: 'assigned', group: 'gpu' },
          { type: 'provision_started' },
          { type: 'stage', stage: 'unpack', detail: { bytes: 123, nested: { ok: true } } },
          { type: 'failed', reason: 'disk not found', stage: 'partition' },
          { type: 'reimage_requested', fromGroup: 'compute' },
          { type: 'reimage_cancelled' },
        ];
        await record('n1', events, 10_000);

        const stored = await store.listEvents({ node: 'n1' });
        expect(stored.map((e) => e.event)).toEqual(events);
        expect(stored.map((e) => e.at)).toEqual(events.map((_, i) => 10_000 + i));
        expect(await store.getNode('n1')).toMatchObject({ state: 'failed', reason: 'disk not found', stage: 'partition' });
      });

      it('stamps events without `at` with the current time', async () => {
        const before = Date.now();
        const r = okResult(await store.recordEvent({ node: MAC_A, event: discovered(MAC_A) }));
        const after = Date.now();
        expect(r.event.at).toBeGreaterThanOrEqual(before);
        expect(r.event.at).toBeLessThanOrEqual(after);
      });

      it('stores nothing for a rejected transition', async () => {
        await record('n1', TO_READY.slice(0, 2));
        const before = await store.getNode('n1');

        const r = await store.recordEvent({ node: 'n1', event: { type: 'ready' }, at: 9_000 });

        expect(r).toEqual({ ok: false, node: 'n1', error: expect.any(String) });
        expect(await store.getNode('n1')).toEqual(before);
        expect(await store.listEvents()).toHaveLength(2);
      });

      it('creates no status for a rejected first event', async () => {
        const r = await store.recordEvent({ node: 'ghost', event: { type: 'installed' } });
        expect(r.ok).toBe(false);
        expect(await store.getNode('ghost')).toBeUndefined();
        expect(await store.listNodes()).toEqual([]);
        expect(await store.listEvents()).toEqual([]);
      });

      it('lists every node with a status', async () => {
        await record('n2', TO_READY.slice(0, 2));
        await record(MAC_B, [discovered(MAC_B)]);
        const nodes = await store.listNodes();
        expect(nodes.map((n) => n.id).sort()).toEqual([MAC_B, 'n2'].sort());
        expect(await store.getNode('nope')).toBeUndefined();
      });
    });

    describe('batches', () => {
      it('records 10,000 events in one call, results in input order', async () => {
        const nodes = Array.from({ length: 2_000 }, (_, i) => `n${String(i).padStart(4, '0')}`);
        const steps: ((n: string, i: number) => LifecycleEvent)[] = [
          (_n, i) => discovered(`52:54:00:00:${String(Math.floor(i / 100)).padStart(2, '0')}:${String(i % 100).padStart(2, '0')}`),
          () => ({ type: 'assigned', group: 'compute' }),
          () => ({ type: 'provision_started' }),
          () => ({ type: 'stage', stage: 'download' }),
          // Every 100th node gets an event its state does not allow: it must be rejected without aborting the rest.
          (_n, i) => (i % 100 === 0 ? { type: 'ready' } : { type: 'installed' }),
        ];
        const batch: NewEvent[] = steps.flatMap((step, s) => nodes.map((node, i) => ({ node, event: step(node, i), at: 1_000 + s })));
        expect(batch).toHaveLength(10_000);

        const results = await store.recordEvents(batch);

        expect(results).toHaveLength(10_000);
        const rejected = results.flatMap((r, i) => (r.ok ? [] : [i]));
        expect(rejected).toEqual(nodes.flatMap((_, i) => (i % 100 === 0 ? [8_000 + i] : [])));
        let lastId = 0;
        results.forEach((r, i) => {
          const input = batch[i]!;
          if (r.ok) {
            expect(r.event.node).toBe(input.node);
            expect(r.event.event).toEqual(input.event);
            expect(r.event.id).toBeGreaterThan(lastId);
            lastId = r.event.id;
          } else {
            expect(r.node).toBe(input.node);
          }
        });
        expect(await store.listEvents()).toHaveLength(10_000 - rejected.length);
        expect(await store.listNodes()).toHaveLength(2_000);
        expect((await store.getNode('n0001'))?.state).toBe('installed');
        expect((await store.getNode('n0100'))?.state).toBe('provisioning');
      });

      it('applies each event of a batch to the status left by the previous ones', async () => {
        const results = await store.recordEvents([
          { node: 'n1', event: discovered(MAC_A) },
          { node: 'n1', event: { type: 'ready' } },
          { node: 'n1', event: { type: 'assigned', group: 'g' } },
          { node: 'n2', event: { type: 'assigned', group: 'g' } },
          { node: 'n2', event: { type: 'reimage_requested', fromGroup: 'h' } },
        ]);

        expect(results.map((r) => r.ok)).toEqual([true, false, true, true, true]);
        expect(results[1]).toEqual({ ok: false, node: 'n1', error: expect.any(String) });
        expect((await store.getNode('n1'))?.state).toBe('assigned');
        expect(await store.getNode('n2')).toMatchObject({ state: 'assigned', reimageRequested: true, reimageFromGroup: 'h' });
        expect(await store.listEvents()).toHaveLength(4);
      });

      it('keeps the installed image with the status, and forgets it when provisioning starts again', async () => {
        const image = { name: 'debian12', sha256: 'd'.repeat(64) };
        await store.recordEvents([
          { node: 'n1', event: { type: 'assigned', group: 'g' } },
          { node: 'n1', event: { type: 'provision_started' } },
          { node: 'n1', event: { type: 'installed', image } },
        ]);
        expect(await store.getNode('n1')).toMatchObject({ state: 'installed', installedImage: image });
        expect((await store.listNodes()).find((n) => n.id === 'n1')?.installedImage).toEqual(image);
        expect((await store.listEvents({ node: 'n1' })).at(-1)?.event).toEqual({ type: 'installed', image });
        await store.recordEvents([
          { node: 'n1', event: { type: 'reimage_requested' } },
          { node: 'n1', event: { type: 'provision_started' } },
        ]);
        expect(await store.getNode('n1')).not.toHaveProperty('installedImage');
      });

      it('keeps a pending wipe and its mode through wiping, and drops it once wiped', async () => {
        await store.recordEvents([
          { node: 'n1', event: { type: 'assigned', group: 'g' } },
          { node: 'n1', event: { type: 'wipe_requested', mode: 'full' } },
        ]);
        expect(await store.getNode('n1')).toMatchObject({ state: 'assigned', wipeRequested: 'full' });
        expect((await store.listNodes()).find((n) => n.id === 'n1')?.wipeRequested).toBe('full');
        await store.recordEvent({ node: 'n1', event: { type: 'wipe_started' } });
        expect(await store.getNode('n1')).toMatchObject({ state: 'wiping', wipeRequested: 'full' });
        const disks = [{ name: 'nvme0n1', bytes: 3_840_755_982_336 }];
        await store.recordEvent({ node: 'n1', event: { type: 'wiped', mode: 'full', disks } });
        const after = await store.getNode('n1');
        expect(after?.state).toBe('wiped');
        expect(after).not.toHaveProperty('wipeRequested');
        expect((await store.listEvents({ node: 'n1' })).at(-1)?.event).toEqual({ type: 'wiped', mode: 'full', disks });
      });

      it('accepts an empty batch', async () => {
        expect(await store.recordEvents([])).toEqual([]);
      });
    });

    describe('listEvents', () => {
      beforeEach(async () => {
        // Interleaved so that a node filter has gaps in the id sequence to skip.
        await store.recordEvents([
          { node: 'a', event: discovered(MAC_A), at: 1 },
          { node: 'b', event: discovered(MAC_B), at: 2 },
          { node: 'a', event: { type: 'assigned', group: 'g' }, at: 3 },
          { node: 'b', event: { type: 'assigned', group: 'g' }, at: 4 },
          { node: 'a', event: { type: 'provision_started' }, at: 5 },
          { node: 'a', event: { type: 'stage', stage: 'x' }, at: 6 },
        ]);
      });

      it('returns everything in id order by default', async () => {
        const all = await store.listEvents();
        expect(all.map((e) => e.at)).toEqual([1, 2, 3, 4, 5, 6]);
        expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((x, y) => x - y));
      });

      it('resumes after an id', async () => {
        const all = await store.listEvents();
        expect((await store.listEvents({ afterId: all[2]!.id })).map((e) => e.at)).toEqual([4, 5, 6]);
        expect(await store.listEvents({ afterId: all[5]!.id })).toEqual([]);
        expect(await store.listEvents({ afterId: 0 })).toEqual(all);
      });

      it('limits from the oldest', async () => {
        expect((await store.listEvents({ limit: 2 })).map((e) => e.at)).toEqual([1, 2]);
        expect(await store.listEvents({ limit: 0 })).toEqual([]);
      });

      it('gives only the newest (oldest first) with last, for a node or all, after an id', async () => {
        expect((await store.listEvents({ last: 2 })).map((e) => e.at)).toEqual([5, 6]);
        expect((await store.listEvents({ node: 'a', last: 3 })).map((e) => e.at)).toEqual([3, 5, 6]);
        expect((await store.listEvents({ node: 'b', last: 10 })).map((e) => e.at)).toEqual([2, 4]);
        const all = await store.listEvents();
        expect((await store.listEvents({ node: 'a', last: 10, afterId: all[2]!.id })).map((e) => e.at)).toEqual([5, 6]);
        expect(await store.listEvents({ last: 0 })).toEqual([]);
      });

      it('filters by node, combined with afterId and limit', async () => {
        expect((await store.listEvents({ node: 'a' })).map((e) => e.at)).toEqual([1, 3, 5, 6]);
        expect((await store.listEvents({ node: 'b' })).map((e) => e.at)).toEqual([2, 4]);
        expect(await store.listEvents({ node: 'nobody' })).toEqual([]);
        const all = await store.listEvents();
        expect((await store.listEvents({ node: 'a', afterId: all[1]!.id, limit: 2 })).map((e) => e.at)).toEqual([3, 5]);
      });

      it('pages through the whole log without gaps or repeats', async () => {
        const seen: number[] = [];
        let afterId = 0;
        for (;;) {
          const page = await store.listEvents({ afterId, limit: 4 });
          if (page.length === 0) break;
          seen.push(...page.map((e) => e.at));
          afterId = page.at(-1)!.id;
        }
        expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
      });
    });

    describe('touchNode', () => {
      it('merges facts, updates the MAC and stamps lastSeenAt without an event', async () => {
        await record('n1', [discovered(MAC_A, { product: 'R650', bios: '1.0' })]);

        await store.touchNode('n1', { mac: MAC_B, facts: { bios: '2.0', serial: 'S9' }, seenAt: 77_000 });

        expect(await store.getNode('n1')).toMatchObject({
          state: 'discovered',
          mac: MAC_B,
          facts: { product: 'R650', bios: '2.0', serial: 'S9' },
          lastSeenAt: 77_000,
        });
        expect(await store.listEvents()).toHaveLength(1);
      });

      it('stamps lastSeenAt with now when no time is given, keeping facts', async () => {
        await record('n1', TO_READY.slice(0, 2));
        const before = Date.now();
        await store.touchNode('n1', {});
        const status = await store.getNode('n1');
        expect(status?.lastSeenAt).toBeGreaterThanOrEqual(before);
        expect(status).toMatchObject({ state: 'assigned', mac: MAC_A, facts: { product: 'R650' } });
      });

      it('does not create a status for a node that has none', async () => {
        await store.touchNode('n9', { mac: MAC_C, facts: { a: 1 }, seenAt: 1 });
        expect(await store.getNode('n9')).toBeUndefined();
      });
    });

    describe('renameNode', () => {
      it('moves a discovered machine, its facts, events and runs to its inventory name', async () => {
        await record(MAC_A, [discovered(MAC_A, { serial: 'S1' })]);
        await store.touchNode(MAC_A, { facts: { bios: '2.1' }, seenAt: 3_000 });
        await store.createRun(run({ id: 'r1', node: MAC_A }));

        await store.renameNode(MAC_A, 'n001');

        expect(await store.getNode(MAC_A)).toBeUndefined();
        expect(await store.getNode('n001')).toMatchObject({
          id: 'n001',
          state: 'discovered',
          mac: MAC_A,
          facts: { serial: 'S1', bios: '2.1' },
          lastSeenAt: 3_000,
        });
        expect(await store.listEvents({ node: MAC_A })).toEqual([]);
        expect((await store.listEvents({ node: 'n001' })).map((e) => e.event.type)).toEqual(['discovered']);
        expect((await store.listRuns({ node: 'n001' })).map((r) => r.id)).toEqual(['r1']);
        expect(await store.listRuns({ node: MAC_A })).toEqual([]);
        okResult(await store.recordEvent({ node: 'n001', event: { type: 'assigned', group: 'compute' } }));
      });

      it('merges into an existing target: target state stands, the machine facts win', async () => {
        await record('n002', [{ type: 'assigned', group: 'compute' }], 1_000);
        await store.touchNode('n002', { facts: { rack: 'r1', cpu: 'old' }, seenAt: 1_500 });
        await record(MAC_B, [discovered(MAC_B, { cpu: 'new', serial: 'S2' })], 2_000);

        await store.renameNode(MAC_B, 'n002');

        expect(await store.getNode(MAC_B)).toBeUndefined();
        expect(await store.getNode('n002')).toMatchObject({
          state: 'assigned',
          mac: MAC_B,
          facts: { rack: 'r1', cpu: 'new', serial: 'S2' },
          lastSeenAt: 2_000,
        });
        const events = await store.listEvents({ node: 'n002' });
        expect(events.map((e) => e.event.type)).toEqual(['assigned', 'discovered']);
      });

      it('is a no-op when the source is gone (a retried rename) or equals the target', async () => {
        await record('n1', TO_READY.slice(0, 2));
        await store.renameNode('missing', 'n1');
        await store.renameNode('n1', 'n1');
        expect((await store.getNode('n1'))?.state).toBe('assigned');
        expect(await store.listEvents({ node: 'n1' })).toHaveLength(2);
      });
    });

    describe('leases', () => {
      // Real clock base: the store compares expiries with its own clock where no `now` can be passed.
      let T: number;
      beforeEach(() => {
        T = Date.now();
      });

      const lease = (ip: string, mac: string, expiresAt: number, extra: Partial<Lease> = {}): Omit<Lease, 'updatedAt'> => ({
        ip,
        mac,
        state: 'bound',
        expiresAt,
        ...extra,
      });

      it('claims a free address', async () => {
        const l = lease('10.0.0.10', MAC_A, T + 3_600_000, { state: 'offered', hostname: 'n001', clientId: '01:52', server: 'rs1' });
        const r = await store.claimLease(l, T);

        expect(r).toEqual({ ok: true, lease: { ...l, updatedAt: T } });
        expect(await store.getLeaseByIp('10.0.0.10')).toEqual({ ...l, updatedAt: T });
        expect(await store.getLeaseByMac(MAC_A)).toEqual({ ...l, updatedAt: T });
        expect(await store.listLeases()).toEqual([{ ...l, updatedAt: T }]);
        expect(await store.getLeaseByIp('10.0.0.11')).toBeUndefined();
        expect(await store.getLeaseByMac(MAC_B)).toBeUndefined();
      });

      it('lets the same MAC claim its address again (renewal)', async () => {
        await store.claimLease(lease('10.0.0.10', MAC_A, T + 1_000, { state: 'offered' }), T);
        const r = await store.claimLease(lease('10.0.0.10', MAC_A, T + 7_200_000), T + 500);

        expect(r.ok).toBe(true);
        expect(await store.getLeaseByIp('10.0.0.10')).toMatchObject({ mac: MAC_A, state: 'bound', expiresAt: T + 7_200_000, updatedAt: T + 500 });
        expect(await store.listLeases()).toHaveLength(1);
      });

      it('refuses an address another MAC holds, returning the holder', async () => {
        await store.claimLease(lease('10.0.0.10', MAC_A, T + 3_600_000, { hostname: 'n001' }), T);
        const holder = await store.getLeaseByIp('10.0.0.10');

        for (const state of ['offered', 'bound'] as const) {
          const r = await store.claimLease(lease('10.0.0.10', MAC_B, T + 3_600_000, { state }), T + 10);
          expect(r).toEqual({ ok: false, heldBy: holder });
        }
        expect(await store.getLeaseByIp('10.0.0.10')).toEqual(holder);
        expect(await store.getLeaseByMac(MAC_B)).toBeUndefined();
      });

      it('hands an expired address to another MAC', async () => {
        await store.claimLease(lease('10.0.0.10', MAC_A, T + 1_000), T);
        const r = await store.claimLease(lease('10.0.0.10', MAC_B, T + 5_000), T + 1_000);
        expect(r.ok).toBe(true);
        expect((await store.getLeaseByIp('10.0.0.10'))?.mac).toBe(MAC_B);
      });

      it('hands a released address to another MAC; only the holder can release', async () => {
        await store.claimLease(lease('10.0.0.10', MAC_A, T + 3_600_000), T);

        expect(await store.releaseLease('10.0.0.10', MAC_B)).toBe(false);
        expect((await store.getLeaseByIp('10.0.0.10'))?.state).toBe('bound');
        expect(await store.releaseLease('10.0.0.99', MAC_A)).toBe(false);
        expect(await store.releaseLease('10.0.0.10', MAC_A)).toBe(true);
        expect(await store.getLeaseByIp('10.0.0.10')).toMatchObject({ mac: MAC_A, state: 'released' });
        expect(await store.releaseLease('10.0.0.10', MAC_A)).toBe(false);

        const r = await store.claimLease(lease('10.0.0.10', MAC_B, T + 3_600_000), T + 10);
        expect(r.ok).toBe(true);
        expect((await store.getLeaseByIp('10.0.0.10'))?.mac).toBe(MAC_B);
      });

      it('quarantines a declined address for every MAC until its time', async () => {
        await store.claimLease(lease('10.0.0.10', MAC_A, T + 3_600_000, { state: 'offered' }), T);
        await store.declineLease('10.0.0.10', MAC_A, T + 600_000);

        expect(await store.getLeaseByIp('10.0.0.10')).toMatchObject({ state: 'declined', expiresAt: T + 600_000 });
        for (const mac of [MAC_B, MAC_A]) {
          const r = await store.claimLease(lease('10.0.0.10', mac, T + 3_600_000), T + 1_000);
          expect(r).toMatchObject({ ok: false, heldBy: { ip: '10.0.0.10', state: 'declined' } });
        }
        const later = await store.claimLease(lease('10.0.0.10', MAC_B, T + 3_600_000), T + 600_000);
        expect(later.ok).toBe(true);
      });

      it('quarantines a declined address nobody held', async () => {
        await store.declineLease('10.0.0.20', MAC_C, T + 600_000);
        const r = await store.claimLease(lease('10.0.0.20', MAC_B, T + 3_600_000), T + 1);
        expect(r.ok).toBe(false);
      });

      it('ignores a decline from a MAC that does not hold a live lease on the address', async () => {
        await store.claimLease(lease('10.0.0.10', MAC_A, T + 3_600_000), T);
        await store.declineLease('10.0.0.10', MAC_B, T + 600_000);
        expect(await store.getLeaseByIp('10.0.0.10')).toMatchObject({ mac: MAC_A, state: 'bound' });
      });

      it('keeps one address per MAC: a second claim releases the first', async () => {
        await store.claimLease(lease('10.0.0.10', MAC_A, T + 3_600_000), T);
        const r = await store.claimLease(lease('10.0.0.11', MAC_A, T + 3_600_000), T + 1);

        expect(r.ok).toBe(true);
        expect(await store.getLeaseByIp('10.0.0.10')).toMatchObject({ mac: MAC_A, state: 'released' });
        expect(await store.getLeaseByMac(MAC_A)).toMatchObject({ ip: '10.0.0.11', state: 'bound' });
        const active = (await store.listLeases()).filter((l) => l.mac === MAC_A && (l.state === 'bound' || l.state === 'offered'));
        expect(active.map((l) => l.ip)).toEqual(['10.0.0.11']);
        expect((await store.claimLease(lease('10.0.0.10', MAC_B, T + 3_600_000), T + 2)).ok).toBe(true);
      });

      it('does not end a quarantine when the decliner claims another address', async () => {
        await store.declineLease('10.0.0.10', MAC_A, T + 600_000);
        await store.claimLease(lease('10.0.0.11', MAC_A, T + 3_600_000), T + 1);
        expect((await store.getLeaseByIp('10.0.0.10'))?.state).toBe('declined');
        expect((await store.claimLease(lease('10.0.0.10', MAC_B, T + 3_600_000), T + 2)).ok).toBe(false);
      });

      it('gives an address to exactly one of several racing MACs', async () => {
        const macs = ['52:54:00:00:01:01', '52:54:00:00:01:02', '52:54:00:00:01:03', '52:54:00:00:01:04'];
        const results = await Promise.all(macs.map((mac) => store.claimLease(lease('10.0.0.50', mac, T + 3_600_000), T)));
        expect(results.filter((r) => r.ok)).toHaveLength(1);
        const winner = await store.getLeaseByIp('10.0.0.50');
        for (const r of results) if (!r.ok) expect(r.heldBy).toEqual(winner);
      });

      it('claims a batch in order: a later claim in the batch sees the earlier ones', async () => {
        await store.claimLease(lease('10.0.0.60', MAC_A, T + 3_600_000), T);
        const results = await store.claimLeases(
          [
            lease('10.0.0.61', MAC_B, T + 3_600_000),
            lease('10.0.0.60', MAC_B, T + 3_600_000), // held by A: refused
            lease('10.0.0.62', '52:54:00:00:01:09', T + 3_600_000),
            lease('10.0.0.62', '52:54:00:00:01:0a', T + 3_600_000), // taken by the previous entry of this batch
          ],
          T + 1,
        );
        expect(results.map((r) => r.ok)).toEqual([true, false, true, false]);
        const refused = results[1]!;
        if (!refused.ok) expect(refused.heldBy.mac).toBe(MAC_A);
        expect((await store.getLeaseByIp('10.0.0.61'))?.mac).toBe(MAC_B);
        expect((await store.getLeaseByIp('10.0.0.62'))?.mac).toBe('52:54:00:00:01:09');
        expect(await store.claimLeases([], T)).toEqual([]);
      });

      it('claims a large batch', async () => {
        const batch = Array.from({ length: 2000 }, (_, i) => lease(`10.1.${i >> 8}.${i & 255}`, `52:54:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, T + 3_600_000));
        const results = await store.claimLeases(batch, T);
        expect(results.every((r) => r.ok)).toBe(true);
        expect((await store.listLeases()).filter((l) => l.ip.startsWith('10.1.'))).toHaveLength(2000);
      });
    });

    describe('useOnce', () => {
      const T = Date.now();
      it('lets a key be used once until it expires', async () => {
        expect(await store.useOnce('plan:n1:abc', T + 60_000, T)).toBe(true);
        expect(await store.useOnce('plan:n1:abc', T + 60_000, T + 1)).toBe(false);
        expect(await store.useOnce('plan:n1:other', T + 60_000, T + 1)).toBe(true);
        // After expiry the key is forgotten (the token it guarded has expired too).
        expect(await store.useOnce('plan:n1:abc', T + 120_000, T + 60_000)).toBe(true);
      });

      it('gives a key to exactly one of several racing callers', async () => {
        const results = await Promise.all(Array.from({ length: 8 }, () => store.useOnce('race', T + 60_000, T)));
        expect(results.filter(Boolean)).toHaveLength(1);
      });
    });

    describe('runs', () => {
      it('creates, reads and finishes a run', async () => {
        const r = run({ id: 'r1', node: 'n1', kind: 'apply', startedAt: 100 });
        await store.createRun(r);
        expect(await store.getRun('r1')).toEqual(r);
        expect(await store.getRun('r2')).toBeUndefined();

        const details = [{ state: 'ntp', result: 'changed', diff: ['+server 10.0.0.1'] }];
        await store.finishRun('r1', { result: 'changed', finishedAt: 250, summary: { changed: 1, ok: 4, line: '1 changed' }, details });

        expect(await store.getRun('r1')).toEqual({
          ...r,
          result: 'changed',
          finishedAt: 250,
          summary: { changed: 1, ok: 4, line: '1 changed' },
          details,
        });
      });

      it('keeps a lone surrogate (half an emoji) as U+FFFD in reasons, event details and their keys, on every store', async () => {
        const cut = 'disk \uD83D';
        await record('n1', [{ type: 'assigned', group: 'g' }, { type: 'provision_started' }, { type: 'stage', stage: 'download', detail: { ['k\uDE00']: cut } }]);
        expect((await store.listEvents({ node: 'n1' })).at(-1)?.event).toEqual({ type: 'stage', stage: 'download', detail: { 'k\uFFFD': 'disk \uFFFD' } });
        await record('n1', [{ type: 'failed', reason: cut, stage: 'install' }]);
        expect(await store.getNode('n1')).toMatchObject({ state: 'failed', reason: 'disk \uFFFD' });
        // A whole emoji is text, kept as it is.
        await record('n1', [{ type: 'failed', reason: 'disk \u{1F600}', stage: 'install' }]);
        expect(await store.getNode('n1')).toMatchObject({ reason: 'disk \u{1F600}' });
      });

      it('keeps NUL characters (command output carries them) as U+FFFD in runs, events, facts and reasons, on every store', async () => {
        const nul = 'PATH=/bin\u0000HOME=/root\u0000';
        const kept = 'PATH=/bin\uFFFDHOME=/root\uFFFD';
        await store.createRun(run({ id: 'r1', node: 'n1', kind: 'apply', startedAt: 100 }));
        await store.finishRun('r1', { result: 'changed', finishedAt: 250, summary: { line: nul }, details: [{ state: 'env', comment: nul, changes: { stdout: nul } }] });
        expect(await store.getRun('r1')).toMatchObject({ summary: { line: kept }, details: [{ state: 'env', comment: kept, changes: { stdout: kept } }] });
        okResult(await store.recordEvent({ node: MAC_A, event: discovered(MAC_A, { serial: nul }), at: 5_000 }));
        expect((await store.getNode(MAC_A))?.facts).toEqual({ serial: kept });
        await record('n1', [{ type: 'assigned', group: 'g' }, { type: 'provision_started' }, { type: 'failed', reason: nul, stage: 'install' }]);
        expect(await store.getNode('n1')).toMatchObject({ state: 'failed', reason: kept });
        expect((await store.listEvents({ node: 'n1' })).at(-1)?.event).toEqual({ type: 'failed', reason: kept, stage: 'install' });
      });

      it('lists runs newest first: of the fleet, one node, several nodes, one kind, up to a limit', async () => {
        await store.createRun(run({ id: 'a1', node: 'n1', kind: 'apply', startedAt: 100 }));
        await store.createRun(run({ id: 'a2', node: 'n2', kind: 'apply', startedAt: 200 }));
        await store.createRun(run({ id: 'r3', node: 'n3', kind: 'readiness', startedAt: 300 }));
        await store.createRun(run({ id: 'u1', node: 'n1', kind: 'audit', startedAt: 400 }));
        const ids = async (q: RunQuery) => (await store.listRuns(q)).map((r) => r.id);
        expect(await ids({})).toEqual(['u1', 'r3', 'a2', 'a1']);
        expect(await ids({ node: 'n1' })).toEqual(['u1', 'a1']);
        expect(await ids({ nodes: ['n1', 'n2'] })).toEqual(['u1', 'a2', 'a1']);
        expect(await ids({ nodes: ['n1', 'n2'], limit: 2 })).toEqual(['u1', 'a2']);
        expect(await ids({ nodes: ['n1', 'n3'], kind: 'apply' })).toEqual(['a1']);
        expect(await ids({ nodes: ['n3', 'nope'] })).toEqual(['r3']);
        expect(await ids({ nodes: [] })).toEqual([]);
        expect(await ids({ nodes: ['n1', 'n2'], node: 'n2' })).toEqual(['a2']);
        expect(await ids({ nodes: ['n1'], node: 'n2' })).toEqual([]);
        expect((await store.listRuns({ nodes: ['n2'] }))[0]).toEqual(run({ id: 'a2', node: 'n2', kind: 'apply', startedAt: 200 }));
      });

      it('refuses a duplicate run id and finishing an unknown run', async () => {
        await store.createRun(run({ id: 'r1' }));
        await expectCode(store.createRun(run({ id: 'r1' })), 'STORE_CONFLICT');
        await expectCode(
          store.finishRun('nope', { result: 'failed', finishedAt: 1, summary: {}, details: null }),
          'NOT_FOUND',
        );
      });

      it('closes as failed the runs a server left running: its own and ownerless ones started before its start, no others', async () => {
        await store.createRun(run({ id: 'mine', summary: { server: 'me' }, startedAt: 100 }));
        await store.createRun(run({ id: 'legacy', summary: {}, startedAt: 100 }));
        await store.createRun(run({ id: 'other-server', summary: { server: 'them' }, startedAt: 100 }));
        await store.createRun(run({ id: 'after-start', summary: { server: 'me' }, startedAt: 600 }));
        await store.createRun(run({ id: 'finished', summary: { server: 'me' }, startedAt: 100 }));
        await store.finishRun('finished', { result: 'success', finishedAt: 200, summary: { ok: 1 }, details: [] });

        const error = { code: 'RUN_ABANDONED', message: 'the server stopped' };
        expect(await store.abandonRuns({ server: 'me', before: 500, finishedAt: 500, error })).toBe(2);
        const byId = new Map((await store.listRuns()).map((r) => [r.id, r]));
        expect(byId.get('mine')).toMatchObject({ result: 'failed', finishedAt: 500, summary: { server: 'me', error } });
        expect(byId.get('legacy')).toMatchObject({ result: 'failed', finishedAt: 500, summary: { error } });
        for (const id of ['other-server', 'after-start']) expect(byId.get(id)?.result, id).toBe('running');
        expect(byId.get('finished')).toMatchObject({ result: 'success', summary: { ok: 1 } });
        expect(await store.abandonRuns({ server: 'me', before: 500, finishedAt: 500, error })).toBe(0);
      });

      it('lists newest first, filtered by node and kind, limited', async () => {
        await store.createRun(run({ id: 'a1', node: 'a', kind: 'apply', startedAt: 100 }));
        await store.createRun(run({ id: 'a2', node: 'a', kind: 'test', startedAt: 300 }));
        await store.createRun(run({ id: 'b1', node: 'b', kind: 'apply', startedAt: 200 }));
        await store.createRun(run({ id: 'a3', node: 'a', kind: 'apply', startedAt: 400 }));

        expect((await store.listRuns()).map((r) => r.id)).toEqual(['a3', 'a2', 'b1', 'a1']);
        expect((await store.listRuns({ node: 'a' })).map((r) => r.id)).toEqual(['a3', 'a2', 'a1']);
        expect((await store.listRuns({ kind: 'apply' })).map((r) => r.id)).toEqual(['a3', 'b1', 'a1']);
        expect((await store.listRuns({ node: 'a', kind: 'apply', limit: 1 })).map((r) => r.id)).toEqual(['a3']);
        expect((await store.listRuns({ limit: 2 })).map((r) => r.id)).toEqual(['a3', 'a2']);
        expect(await store.listRuns({ node: 'c' })).toEqual([]);
      });
    });

    describe('prune', () => {
      const finished = async (r: Run, summary: Record<string, unknown> = {}): Promise<void> => {
        await store.createRun(r);
        await store.finishRun(r.id, { result: 'success', finishedAt: r.startedAt + 1, summary, details: [] });
      };
      const ids = async (): Promise<string[]> => (await store.listRuns()).map((r) => r.id).sort();

      it('removes finished runs started before the cutoff, keeping running ones and each node\'s newest of each kind', async () => {
        // n1: three old audits and one old apply; n2: one old audit; n3: an old running readiness run.
        for (const [i, at] of [100, 200, 300].entries()) await finished(run({ id: `n1-audit-${i}`, node: 'n1', kind: 'audit', startedAt: at }));
        await finished(run({ id: 'n1-apply', node: 'n1', kind: 'apply', startedAt: 150 }));
        await finished(run({ id: 'n1-audit-new', node: 'n1', kind: 'audit', startedAt: 900 }));
        await finished(run({ id: 'n2-audit', node: 'n2', kind: 'audit', startedAt: 100 }));
        await store.createRun(run({ id: 'n3-running', node: 'n3', kind: 'readiness', startedAt: 50 }));

        expect(await store.prune({ runsStartedBefore: 500, keepLastRunsPerNode: 2 })).toEqual({ runs: 2, discovered: 0, discoveredEvents: 0 });
        // n1 keeps its two newest audits (one of them old) and its only apply; n2 its only audit; the running run stays.
        expect(await ids()).toEqual(['n1-apply', 'n1-audit-2', 'n1-audit-new', 'n2-audit', 'n3-running']);
        expect(await store.getRun('n1-audit-2')).toMatchObject({ result: 'success', finishedAt: 301 });

        // A running run is not among the newest that are kept: it may yet be closed as abandoned.
        await store.createRun(run({ id: 'n1-audit-running', node: 'n1', kind: 'audit', startedAt: 950 }));
        expect((await store.prune({ runsStartedBefore: 500, keepLastRunsPerNode: 2 })).runs).toBe(0);
        expect((await store.prune({ runsStartedBefore: 1_000, keepLastRunsPerNode: 1 })).runs).toBe(1);
        expect(await ids()).toEqual(['n1-apply', 'n1-audit-new', 'n1-audit-running', 'n2-audit', 'n3-running']);
        // Below 1 still keeps the newest.
        expect((await store.prune({ runsStartedBefore: 10_000, keepLastRunsPerNode: 0 })).runs).toBe(0);
      });

      it('keeps a node\'s newest apply that records what it configured, behind newer ones that do not', async () => {
        await finished(run({ id: 'configured-old', node: 'n1', kind: 'apply', startedAt: 100 }), { configuredAs: { group: 'g', roles: ['a'] } });
        await finished(run({ id: 'configured', node: 'n1', kind: 'apply', startedAt: 200 }), { configuredAs: { group: 'g', roles: ['b'] } });
        // Closed as abandoned: they say nothing about what the node was configured as.
        for (const at of [300, 400, 500]) await finished(run({ id: `abandoned-${at}`, node: 'n1', kind: 'apply', startedAt: at }), { error: { code: 'RUN_ABANDONED' } });

        expect((await store.prune({ runsStartedBefore: 450, keepLastRunsPerNode: 1 })).runs).toBe(3);
        expect(await ids()).toEqual(['abandoned-500', 'configured']);
      });

      it('goes through a backlog in batches, with kept runs among the old ones', async () => {
        for (let i = 0; i < 25; i++) await finished(run({ id: `r${String(i).padStart(2, '0')}`, node: `n${i % 3}`, kind: 'audit', startedAt: 100 + i }));
        expect((await store.prune({ runsStartedBefore: 1_000, keepLastRunsPerNode: 2, batchSize: 4 })).runs).toBe(19);
        expect(await ids()).toEqual(['r21', 'r22', 'r23', 'r24', 'r19', 'r20'].sort());
      });

      it('forgets discovered machines not seen since the cutoff, with their events, and nothing else', async () => {
        okResult(await store.recordEvent({ node: MAC_A, event: discovered(MAC_A), at: 100 }));
        okResult(await store.recordEvent({ node: MAC_B, event: discovered(MAC_B), at: 100 }));
        await store.touchNode(MAC_B, { seenAt: 800 });
        okResult(await store.recordEvent({ node: MAC_C, event: discovered(MAC_C), at: 100 }));
        okResult(await store.recordEvent({ node: MAC_C, event: discovered(MAC_C), at: 200 }));
        // An inventory node, never seen, and one that went through discovery under its MAC before it was named.
        await record('n1', [{ type: 'assigned', group: 'g' }], 50);
        okResult(await store.recordEvent({ node: '52:54:00:00:00:0d', event: discovered('52:54:00:00:00:0d'), at: 60 }));
        await store.renameNode('52:54:00:00:00:0d', 'n2');
        await store.claimLease({ ip: '10.0.0.5', mac: MAC_A, state: 'bound', expiresAt: 10_000 }, 100);
        await finished(run({ id: 'n1-old', node: 'n1', kind: 'apply', startedAt: 10 }));

        expect(await store.prune({ discoveredSeenBefore: 500, keepLastRunsPerNode: 1, batchSize: 1 })).toEqual({ runs: 0, discovered: 2, discoveredEvents: 3 });
        expect((await store.listNodes()).map((n) => n.id)).toEqual([MAC_B, 'n1', 'n2']);
        expect(new Set((await store.listEvents()).map((e) => e.node))).toEqual(new Set([MAC_B, 'n1', 'n2']));
        expect(await store.getLeaseByMac(MAC_A)).toMatchObject({ ip: '10.0.0.5', state: 'bound' });
        expect(await ids()).toEqual(['n1-old']);

        // Seen again, it is discovered afresh.
        okResult(await store.recordEvent({ node: MAC_A, event: discovered(MAC_A), at: 900 }));
        expect(await store.getNode(MAC_A)).toMatchObject({ state: 'discovered', lastSeenAt: 900 });
      });

      it('a node removed from the inventory is a discovered machine under its MAC, forgotten with its events and runs', async () => {
        await record('gone', [{ type: 'assigned', group: 'g' }, { type: 'provision_started' }, { type: 'installed' }, { type: 'configure_started' }, { type: 'ready' }], 50);
        await store.touchNode('gone', { mac: MAC_A, seenAt: 300 });
        await finished(run({ id: 'gone-apply', node: 'gone', kind: 'apply', startedAt: 60 }));
        await finished(run({ id: 'stays', node: 'n1', kind: 'apply', startedAt: 60 }));
        okResult(await store.recordEvent({ node: 'gone', event: { type: 'removed', entry: 'inventory.yaml:3 nodes[0] (gone)' }, at: 400 }));
        await store.renameNode('gone', MAC_A);
        expect(await store.getNode('gone')).toBeUndefined();
        expect(await store.getNode(MAC_A)).toMatchObject({ id: MAC_A, mac: MAC_A, state: 'discovered', reimageRequested: false, lastSeenAt: 300 });
        expect((await store.listEvents({ node: MAC_A })).map((e) => e.event.type)).toEqual(['assigned', 'provision_started', 'installed', 'configure_started', 'ready', 'removed']);
        expect((await store.listRuns({ node: MAC_A })).map((r) => r.id)).toEqual(['gone-apply']);

        // The keep-last rule kept its newest run while it was a node; forgotten as a discovered machine, the run goes too.
        expect(await store.prune({ runsStartedBefore: 1_000, discoveredSeenBefore: 500, keepLastRunsPerNode: 1 })).toEqual({ runs: 0, discovered: 1, discoveredEvents: 6 });
        expect(await store.getNode(MAC_A)).toBeUndefined();
        expect(await ids()).toEqual(['stays']);
      });

      it('removes nothing without cutoffs, and stops between batches when asked', async () => {
        okResult(await store.recordEvent({ node: MAC_A, event: discovered(MAC_A), at: 100 }));
        await finished(run({ id: 'a', node: 'n1', startedAt: 100 }));
        await finished(run({ id: 'b', node: 'n1', startedAt: 200 }));
        expect(await store.prune({ keepLastRunsPerNode: 1 })).toEqual({ runs: 0, discovered: 0, discoveredEvents: 0 });
        const stopped = AbortSignal.abort();
        expect(await store.prune({ runsStartedBefore: 1_000, discoveredSeenBefore: 1_000, keepLastRunsPerNode: 1, signal: stopped })).toEqual({ runs: 0, discovered: 0, discoveredEvents: 0 });
        expect(await ids()).toEqual(['a', 'b']);
        expect(await store.getNode(MAC_A)).toBeDefined();
      });
    });

    describe('servers', () => {
      const img = (name: string, n: number) => ({ name, sha256: String(n).repeat(64).slice(0, 64), infoHash: String(n).repeat(40).slice(0, 40) });

      it('registers a server and lists it with its images and heartbeat time', async () => {
        await store.registerServer({ name: 'boot-a', publicUrl: 'http://10.0.0.1:8080', tracker: true, images: [img('debian12', 1)] }, 5_000);
        expect(await store.listServers()).toEqual([
          { name: 'boot-a', publicUrl: 'http://10.0.0.1:8080', tracker: true, images: [img('debian12', 1)], lastSeenAt: 5_000 },
        ]);
      });

      it('replaces a server row on each heartbeat (name is the key)', async () => {
        await store.registerServer({ name: 'boot-a', publicUrl: 'http://10.0.0.1:8080', tracker: true, images: [img('debian12', 1)] }, 5_000);
        await store.registerServer({ name: 'boot-a', publicUrl: 'http://10.0.0.9:8080', tracker: false, images: [] }, 6_000);
        expect(await store.listServers()).toEqual([{ name: 'boot-a', publicUrl: 'http://10.0.0.9:8080', tracker: false, images: [], lastSeenAt: 6_000 }]);
      });

      it('lists only servers heard from within maxAgeMs, by name', async () => {
        await store.registerServer({ name: 'boot-c', publicUrl: 'http://c', tracker: true, images: [] }, 10_000);
        await store.registerServer({ name: 'boot-a', publicUrl: 'http://a', tracker: true, images: [img('x', 2), img('y', 3)] }, 19_000);
        await store.registerServer({ name: 'boot-b', publicUrl: 'http://b', tracker: true, images: [] }, 20_000);
        expect((await store.listServers(undefined, 20_000)).map((s) => s.name)).toEqual(['boot-a', 'boot-b', 'boot-c']);
        expect((await store.listServers(1_000, 20_000)).map((s) => s.name)).toEqual(['boot-a', 'boot-b']);
        expect((await store.listServers(0, 20_000)).map((s) => s.name)).toEqual(['boot-b']);
        expect((await store.listServers(1_000, 20_000))[0]!.images).toEqual([img('x', 2), img('y', 3)]);
      });

      it("without an explicit time, stamps and ages rows on the store's own clock (the database's, for PostgreSQL)", async () => {
        await store.registerServer({ name: 'boot-live', publicUrl: 'http://live', tracker: true, images: [] });
        // A row stamped ten minutes ago: a server that stopped beating then.
        await store.registerServer({ name: 'boot-gone', publicUrl: 'http://gone', tracker: true, images: [] }, Date.now() - 600_000);
        expect((await store.listServers(30_000)).map((s) => s.name)).toEqual(['boot-live']);
        const [live] = await store.listServers(30_000);
        expect(Math.abs(live!.lastSeenAt - Date.now())).toBeLessThan(60_000);
      });

      it('forgets a removed server, and removing an unknown one is harmless', async () => {
        await store.registerServer({ name: 'boot-a', publicUrl: 'http://a', tracker: true, images: [] }, 1_000);
        await store.registerServer({ name: 'boot-b', publicUrl: 'http://b', tracker: true, images: [] }, 1_000);
        await store.removeServer('boot-a');
        await store.removeServer('nobody');
        expect((await store.listServers()).map((s) => s.name)).toEqual(['boot-b']);
      });
    });

    describe('two stores on the same data (two servers)', () => {
      let other: ObservedStore;
      beforeEach(async () => {
        other = await openSibling();
      });
      afterEach(async () => {
        await other.close();
      });

      const T = Date.now();
      const bound = (ip: string, mac: string): Omit<Lease, 'updatedAt'> => ({ ip, mac, state: 'bound', expiresAt: T + 3_600_000 });

      it('gives each address to exactly one of two MACs claiming it through different stores at once', async () => {
        const ips = Array.from({ length: 20 }, (_, i) => `10.2.0.${i + 1}`);
        const results = await Promise.all(
          ips.flatMap((ip, i) => [
            store.claimLease(bound(ip, `52:54:00:02:00:${i.toString(16).padStart(2, '0')}`), T),
            other.claimLease(bound(ip, `52:54:00:02:01:${i.toString(16).padStart(2, '0')}`), T),
          ]),
        );
        for (const [i, ip] of ips.entries()) {
          const pair = [results[2 * i]!, results[2 * i + 1]!];
          expect(pair.filter((r) => r.ok)).toHaveLength(1);
          const holder = await other.getLeaseByIp(ip);
          expect(await store.getLeaseByIp(ip)).toEqual(holder);
          const winner = pair.find((r) => r.ok);
          const loser = pair.find((r) => !r.ok);
          if (winner?.ok) expect(holder).toEqual(winner.lease);
          if (loser && !loser.ok) expect(loser.heldBy).toEqual(holder);
        }
      });

      it('leaves one MAC claiming two addresses through different stores at once with one active lease', async () => {
        for (let round = 0; round < 10; round++) {
          const mac = `52:54:00:03:00:${round.toString(16).padStart(2, '0')}`;
          const results = await Promise.all([store.claimLease(bound(`10.3.${round}.1`, mac), T), other.claimLease(bound(`10.3.${round}.2`, mac), T)]);
          expect(results.every((r) => r.ok)).toBe(true);
          const active = (await store.listLeases()).filter((l) => l.mac === mac && (l.state === 'bound' || l.state === 'offered'));
          expect(active).toHaveLength(1);
          expect(await other.getLeaseByMac(mac)).toEqual(active[0]);
        }
      });

      it('keeps one event log: ids increase across both stores and each sees the other\'s status', async () => {
        const nodes = Array.from({ length: 10 }, (_, i) => `s${i}`);
        await Promise.all(
          nodes.map(async (node, i) => {
            const first = i % 2 === 0 ? store : other;
            const second = first === store ? other : store;
            okResult(await first.recordEvent({ node, event: discovered(`52:54:00:04:00:0${i}`), at: 10 }));
            okResult(await second.recordEvent({ node, event: { type: 'assigned', group: 'g' }, at: 11 }));
          }),
        );
        const events = await other.listEvents();
        expect(events).toHaveLength(20);
        const ids = events.map((e) => e.id);
        expect(new Set(ids).size).toBe(20);
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
        expect(await store.listEvents()).toEqual(events);
        for (const node of nodes) {
          expect((await store.getNode(node))?.state).toBe('assigned');
          expect(await other.getNode(node)).toEqual(await store.getNode(node));
        }
      });

      it('applies one node\'s events from two stores one at a time: the status is the fold of the stored log', async () => {
        okResult(await store.recordEvent({ node: 'n1', event: discovered(MAC_A, { a: 1 }), at: 1 }));
        const cycle: LifecycleEvent[] = [
          { type: 'assigned', group: 'g' },
          { type: 'provision_started' },
          { type: 'stage', stage: 'download' },
          { type: 'failed', reason: 'disk' },
          { type: 'reimage_requested', fromGroup: 'h' },
          { type: 'installed' },
        ];
        const events = Array.from({ length: 36 }, (_, i) => cycle[i % cycle.length]!);
        const results = await Promise.all(events.map((event, i) => (i % 2 === 0 ? store : other).recordEvent({ node: 'n1', event, at: 2 + i })));

        const log = await other.listEvents({ node: 'n1' });
        const accepted = results.filter((r) => r.ok);
        expect(log).toHaveLength(1 + accepted.length);
        expect(new Set(log.map((e) => e.id))).toEqual(new Set([log[0]!.id, ...accepted.map((r) => (r.ok ? r.event.id : 0))]));
        // Serializable: replaying the stored log in id order accepts every event and ends where the store ended.
        const folded = foldLifecycle(log.map((e) => e.event));
        expect(folded.rejected).toBeUndefined();
        const { id: _id, mac: _mac, updatedAt: _u, lastSeenAt: _l, ...status } = (await store.getNode('n1'))!;
        expect(status).toEqual(folded.status);
      });

      it('shows each server the heartbeats of the other', async () => {
        await Promise.all([
          store.registerServer({ name: 'boot-a', publicUrl: 'http://a', tracker: true, images: [] }, T),
          other.registerServer({ name: 'boot-b', publicUrl: 'http://b', tracker: false, images: [] }, T),
        ]);
        for (const s of [store, other]) expect((await s.listServers(30_000, T)).map((r) => [r.name, r.tracker])).toEqual([['boot-a', true], ['boot-b', false]]);
      });

      it('lets a single-use key be used once across both stores', async () => {
        const results = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? store : other).useOnce('shared', T + 60_000, T)));
        expect(results.filter(Boolean)).toHaveLength(1);
      });
    });
  });
}

function run(over: Partial<Run> & { id: string }): Run {
  return {
    node: 'n1',
    kind: 'apply',
    result: 'running',
    startedAt: 1_000,
    summary: {},
    details: null,
    ...over,
  };
}
