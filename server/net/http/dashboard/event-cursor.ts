import type { ObservedStore } from '../../../store/types.js';

type EventLister = Pick<ObservedStore, 'listEvents'>;

async function firstIdAfter(store: EventLister, afterId: number): Promise<number | undefined> {
  return (await store.listEvents({ afterId, limit: 1 }))[0]?.id;
}

/**
 * The id of the newest stored event, found with O(log n) one-row queries (gallop, then bisect), because the store
 * interface has no "max id" and reading every event to find it would grow with the fleet's history. A page embeds
 * this id so its live stream starts exactly where the rendered page left off.
 */
export async function latestEventId(store: EventLister): Promise<number> {
  let known = await firstIdAfter(store, 0);
  if (known === undefined) return 0;
  // Invariant: an event with id `known` exists; none exists with id > `ceiling` once the gallop stops.
  let ceiling = known * 2 + 1;
  for (;;) {
    const beyond = await firstIdAfter(store, ceiling);
    if (beyond === undefined) break;
    known = beyond;
    ceiling = beyond * 2 + 1;
  }
  while (known < ceiling) {
    const mid = Math.ceil((known + ceiling) / 2);
    const found = await firstIdAfter(store, mid - 1);
    if (found === undefined) ceiling = mid - 1;
    else known = found;
  }
  return known;
}
