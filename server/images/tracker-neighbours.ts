import type { AnnounceResponse, Swarm, SwarmPeer } from 'bittorrent-tracker';
import { knownCount } from './announce-count.js';
import { SwarmTopology } from './swarm-topology.js';

/**
 * Gives each downloading node a few neighbours (swarm-topology.ts says why) instead of a random draw of the whole
 * swarm. Peers whose first announce was already complete (the server's seeder, a spare seed box) are not in the
 * graph: every node is told about them.
 *
 * Nodes of a rack powered on together announce within a fraction of a second. A new downloading node's first answer
 * is held until nobody new has come for JOIN_QUIET_MS (at most JOIN_MAX_HOLD_MS), and those that came together are
 * placed as one batch: placing them one by one would leave the extra neighbours of every splice on the early ones.
 * aria2c only acts on an answer at its next once-a-second pass anyway, so the hold costs a node a fraction of that.
 * Quiet 450 ms: with 100 ms, one node in 16 starting a little late (a busy host) split the wave into batches joined
 * through few edges, and those runs were 2-5 s slower; measured in bench:fanout, 450 ms cost about 0.6 s when all 16
 * started together and kept a wave whose last 13 started 300 ms after the first 3 as one batch.
 */
export const JOIN_QUIET_MS = 450;
export const JOIN_MAX_HOLD_MS = 1200;
/** A batch this large is placed at once: placing costs O(members x batch), and a flood of announces must not stall the server. */
export const JOIN_MAX_BATCH = 1000;

export interface NeighbourSwarm {
  /** Nodes in the graph (those the swarm dropped go when the next batch is placed). */
  members(): number;
  /** The neighbours ("ip:port", sorted) of a node in the graph; undefined for a seed or a node not placed yet. */
  neighboursOf(addr: string): string[] | undefined;
  /** Answers every held announce now (the tracker is closing). */
  close(): void;
}

interface HeldAnnounce {
  addr: string;
  numwant: number;
  answer: () => void;
  response: AnnounceResponse;
}

/** `placed`: told about every batch placed (the addresses in arrival order), for the log. */
export function handOutNeighbours(swarm: Swarm, degree: number, placed?: (batch: string[]) => void): NeighbourSwarm {
  const topology = new SwarmTopology(degree);
  const announce = swarm.announce.bind(swarm);
  let held: HeldAnnounce[] = [];
  let firstHeldAt = 0;
  let timer: NodeJS.Timeout | undefined;

  /** The seeds outside the graph, then the member's neighbours that are still in the swarm (gone ones are forgotten). */
  const peersFor = (addr: string, numwant: number): SwarmPeer[] => {
    for (const n of topology.neighbours(addr)) if (!swarm.peers.peek(n)) topology.remove(n);
    topology.fill(addr);
    const peers: SwarmPeer[] = [];
    for (const key of swarm.peers.keys) {
      const p = swarm.peers.peek(key);
      if (p && p.complete && key !== addr && !topology.has(key)) peers.push(p);
    }
    for (const n of topology.neighbours(addr)) {
      const p = swarm.peers.peek(n);
      if (p) peers.push(p);
    }
    return peers.slice(0, numwant);
  };

  const release = (): void => {
    timer = undefined;
    const batch = held;
    held = [];
    // Members the swarm dropped (silent past the peer TTL) must not be spliced into, nor kept for ever.
    for (const m of topology.members()) if (!swarm.peers.peek(m)) topology.remove(m);
    const newcomers = topology.place(batch.map((h) => h.addr));
    placed?.(newcomers);
    for (const h of batch) {
      h.response.peers = peersFor(h.addr, h.numwant);
      h.answer();
    }
  };

  const hold = (h: HeldAnnounce): void => {
    const now = Date.now();
    if (held.length === 0) firstHeldAt = now;
    held.push(h);
    if (timer) clearTimeout(timer);
    if (held.length >= JOIN_MAX_BATCH) return release();
    timer = setTimeout(release, Math.max(0, Math.min(JOIN_QUIET_MS, firstHeldAt + JOIN_MAX_HOLD_MS - now)));
  };

  swarm.announce = (params, cb) => {
    const addr = params.addr;
    const numwant = params.numwant;
    if (params.event === 'stopped') {
      topology.remove(addr);
      return announce(params, cb);
    }
    const member = topology.has(addr);
    const pending = held.some((h) => h.addr === addr);
    // A seed from its first announce stays outside the graph and hears of everyone, as without neighbours.
    if (!member && !pending && knownCount(params.left) === 0) return announce(params, cb);
    announce(params, (err, response) => {
      if (err || !response) return cb?.(err, response);
      if (member) {
        response.peers = peersFor(addr, numwant);
        return cb?.(null, response);
      }
      hold({ addr, numwant, response, answer: () => cb?.(null, response) });
    });
  };

  return {
    members: () => topology.size(),
    neighboursOf: (addr) => (topology.has(addr) ? topology.neighbours(addr).sort() : undefined),
    close() {
      if (timer) clearTimeout(timer);
      if (held.length > 0) release();
    },
  };
}
