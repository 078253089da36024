import type { IncomingMessage, ServerResponse } from 'node:http';
import { Server as TrackerServer, type AnnounceParams, type Swarm } from 'bittorrent-tracker';
import { Router } from 'express';
import type { Logger } from '../log.js';
import { knownCount } from './announce-count.js';
import { handOutNeighbours, type NeighbourSwarm } from './tracker-neighbours.js';

export interface TrackerOptions {
  /** Private tracker: only these info-hashes (the catalogued images) get a swarm. */
  isKnown: (infoHash: string) => boolean;
  intervalSeconds: number;
  /** For this long after a leecher's started announce, it is asked to re-announce every second (0: never). */
  startupAnnounceSeconds: number;
  /** Most peers handed out per announce. */
  numwant: number;
  /** Neighbours each downloading node is told about (tracker-neighbours.ts); 0 or absent: a random draw of everyone. */
  neighbours?: number;
  /** A peer that has not announced for this long is forgotten (crashed or powered-off node). */
  peerTtlSeconds: number;
  /** A peer that still needs pieces announced itself for the first time (the seeder connects to it at once). */
  onLeecherJoined?: (infoHash: string, ip: string, port: number) => void;
  log: Logger;
}

/** One peer as the tracker last heard it. */
export interface TrackerPeer {
  ip: string;
  port: number;
  peerId: string;
  uploaded: number;
  downloaded: number;
  left: number;
  complete: boolean;
  /** ISO 8601 time of its last announce. */
  lastAnnounce: string;
  /** With `neighbours` on, the nodes ("ip:port") it is told about besides the seeds; absent for a seed. */
  neighbours?: string[];
}

/** A peer as kept here: what the swarm view shows, and when its download started (for askStartingLeechersBack). */
type HeardPeer = TrackerPeer & { startedAtMs: number };

const withoutStart = ({ startedAtMs: _startedAt, ...peer }: HeardPeer): TrackerPeer => peer;

export interface TrackerSwarm {
  infoHash: string;
  seeders: number;
  leechers: number;
  peers: TrackerPeer[];
}

export interface Tracker {
  /** GET /announce and GET /scrape, to mount on the server's HTTP app. */
  routes: Router;
  swarms(): TrackerSwarm[];
  /** Forgets swarms whose image left the catalog. */
  prune(): void;
  /** How many peers' announce counters are held, over all swarms (bounded by the peers the package still holds). */
  heardPeers(): number;
  /** How many nodes the swarm graphs hold, over all swarms (0 without neighbours). */
  graphMembers(): number;
  close(): void;
}

/**
 * bittorrent-tracker lists an HTTP announcer among the peers it hands back (it leaves out only a WebRTC peer's own
 * id). A node given its own address connects to itself: aria2c drops that connection only after the handshake, and
 * its listener accepts at most three incoming connections per one-second sweep, so the self-connection took one of
 * the three the node gets in the first second of its install. Asks the swarm for one peer more, drops the announcer.
 */
function withoutAnnouncer(swarm: Swarm): void {
  const announce = swarm.announce.bind(swarm);
  swarm.announce = (params, cb) => {
    const wanted = params.numwant;
    params.numwant = wanted + 1;
    announce(params, (err, response) => {
      params.numwant = wanted;
      if (response) response.peers = response.peers.filter((p) => p.peerId !== params.peer_id && !(p.ip === params.ip && p.port === params.port)).slice(0, wanted);
      cb?.(err, response);
    });
  };
}

/**
 * aria2c connects to the peers an announce named, and accepts incoming connections (three at most), only in the pass
 * of its event loop it makes once a second, or right after a tracker answer wakes it. Nor does a node hear of the
 * nodes that booted after it before its next announce (20 s later by default): until then each of them waits on that
 * once-a-second accept to reach it. Asked to re-announce every second while it starts (aria2c does so about every
 * two), a node learns of its late neighbours and connects out to them too. bench:fanout, 16 nodes, six runs each
 * interleaved: all nodes in 28.9-31.4 s (30.1 on average) instead of 30.0-39.0 s (33.4), the median node 0.4 s sooner.
 */
function askStartingLeechersBack(swarm: Swarm, isStarting: (params: AnnounceParams) => boolean): void {
  const announce = swarm.announce.bind(swarm);
  swarm.announce = (params, cb) => {
    announce(params, (err, response) => {
      if (response && isStarting(params)) response.interval = 1;
      cb?.(err, response);
    });
  };
}

/**
 * Calls `arrived` with every announce as it comes in, before anything else in the swarm sees it. With neighbours on,
 * a starting node's answer is held until its wave has announced (tracker-neighbours.ts); the seeder must not wait
 * for that. aria2c accepts an incoming connection only on its once-a-second sweep or right after a tracker answer,
 * so a connection the seeder opens during the hold is taken together with the answer, one sweep (up to a second)
 * before a connection opened when the answer goes out.
 */
function onArrival(swarm: Swarm, arrived: (params: AnnounceParams) => void): void {
  const announce = swarm.announce.bind(swarm);
  swarm.announce = (params, cb) => {
    arrived(params);
    announce(params, cb);
  };
}

// Announce counters arrive as query strings; a missing or garbled one must not poison the view with NaN.
const counter = (v: unknown): number => Math.max(0, knownCount(v));

/** How often (in announces) peers the package has expired are forgotten here too. */
const SWEEP_EVERY_ANNOUNCES = 1_000;
/** A leecher the seeder was sent to on arrival but the tracker never recorded is forgotten after this long. */
const SEEDER_SENT_TTL_MS = 60_000;

/**
 * An HTTP-only BitTorrent tracker on the server's own HTTP port (nodes already reach it; no extra firewall hole),
 * built on bittorrent-tracker's request handler with its own listeners all off. The package keeps only ip/port per
 * peer, so the transfer counters each announce carries are kept here for the swarm view.
 */
export function createTracker(opts: TrackerOptions): Tracker {
  const server = new TrackerServer({
    http: false,
    udp: false,
    ws: false,
    stats: false,
    interval: opts.intervalSeconds * 1000,
    peersCacheTtl: opts.peerTtlSeconds * 1000,
    filter: (infoHash, params, cb) => {
      if (!opts.isKnown(infoHash)) return cb(new Error('unknown torrent: this tracker serves only the images of its server'));
      params.numwant = Math.min(params.numwant, opts.numwant);
      cb(null);
    },
  });
  const heard = new Map<string, Map<string, HeardPeer>>();
  const isStarting = (p: AnnounceParams): boolean => {
    if (opts.startupAnnounceSeconds <= 0 || knownCount(p.left) === 0) return false;
    if (p.event === 'started') return true;
    // A leecher never heard starting (the server restarted under it) starts its window now.
    const seen = heard.get(p.info_hash)?.get(p.addr);
    return !seen || Date.now() - seen.startedAtMs < opts.startupAnnounceSeconds * 1000;
  };
  /**
   * Leechers the seeder was sent to when their first announce arrived, and when, until the tracker records them
   * (`${infoHash} ${addr}`): their held announce is answered later, and must not send the seeder a second time.
   */
  const seederSent = new Map<string, number>();
  const joinedKey = (infoHash: string, addr: string) => `${infoHash} ${addr}`;
  const arrived = (p: AnnounceParams): void => {
    // An unknown `left` (-1) is not complete: the seeder connects to a peer that may need the image.
    if (p.event === 'stopped' || knownCount(p.left) === 0 || heard.get(p.info_hash)?.has(p.addr)) return;
    const key = joinedKey(p.info_hash, p.addr);
    if (seederSent.has(key)) return;
    seederSent.set(key, Date.now());
    opts.onLeecherJoined?.(p.info_hash, p.ip, p.port);
  };
  const neighbourSwarms = new Map<string, NeighbourSwarm>();
  const createSwarm = server.createSwarm.bind(server);
  server.createSwarm = (infoHash, cb) =>
    createSwarm(infoHash, (err, swarm) => {
      if (swarm) {
        withoutAnnouncer(swarm);
        askStartingLeechersBack(swarm, isStarting);
        if ((opts.neighbours ?? 0) >= 2) {
          const placed = (batch: string[]) => opts.log.info({ infoHash, nodes: batch }, `${batch.length} starting node(s) placed in the swarm graph, ${opts.neighbours} neighbours each`);
          neighbourSwarms.set(infoHash, handOutNeighbours(swarm, opts.neighbours!, placed));
        }
        // Last, so it runs first: before the neighbours' hold.
        onArrival(swarm, arrived);
      }
      cb(err, swarm);
    });
  server.on('warning', (err: Error) => opts.log.debug({ err: err.message }, 'tracker request refused'));
  server.on('error', (err: Error) => opts.log.warn({ err: err.message }, 'tracker error'));

  /** Drops what the package's LRU no longer holds (it expires silent peers and evicts beyond its size). */
  const forgetExpired = (infoHash: string): void => {
    const mine = heard.get(infoHash);
    const swarm = server.torrents[infoHash];
    if (!mine) return;
    for (const key of mine.keys()) if (!swarm?.peers.peek(key)) mine.delete(key);
  };
  // Nodes seed until they reboot and never announce `stopped`: without a sweep now and then, a server nobody asks
  // for the swarm view (no Prometheus, no dashboard) kept every peer it had ever heard of.
  let sinceSweep = 0;
  const record = (addr: string, p: AnnounceParams): void => {
    if (++sinceSweep >= SWEEP_EVERY_ANNOUNCES) {
      sinceSweep = 0;
      for (const infoHash of heard.keys()) forgetExpired(infoHash);
      // An announce that arrived but was never recorded (refused while held, the tracker closing): forgotten.
      for (const [key, at] of seederSent) if (Date.now() - at > SEEDER_SENT_TTL_MS) seederSent.delete(key);
    }
    // bittorrent-tracker emits these events even for an announce its filter refused: an unknown info-hash would
    // otherwise grow `heard` without bound (nothing prunes a swarm that never existed) and wake the seeder.
    if (!opts.isKnown(p.info_hash)) return;
    let peers = heard.get(p.info_hash);
    if (!peers) heard.set(p.info_hash, (peers = new Map()));
    if (p.event === 'stopped') {
      peers.delete(addr);
      return;
    }
    // A missing or garbled `left` is unknown (-1), not 0: bittorrent-tracker counts such a peer as incomplete, and the
    // view must agree with it.
    const left = knownCount(p.left);
    const before = peers.get(addr);
    // The seeder was sent to it when its first announce arrived (onArrival); recorded now, `heard` remembers it.
    seederSent.delete(joinedKey(p.info_hash, addr));
    peers.set(addr, {
      startedAtMs: p.event === 'started' || !before ? Date.now() : before.startedAtMs,
      ip: p.ip,
      port: p.port,
      peerId: p.peer_id,
      uploaded: counter(p.uploaded),
      downloaded: counter(p.downloaded),
      left,
      complete: left === 0,
      lastAnnounce: new Date().toISOString(),
    });
  };
  for (const event of ['start', 'update', 'complete', 'stop', 'pause'] as const) server.on(event, record);

  const handle = (action: 'announce' | 'scrape') => (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('Content-Type', 'text/plain');
    res.setHeader('Cache-Control', 'no-store');
    server.onHttpRequest(req, res, { action });
  };
  const routes = Router();
  routes.get('/announce', handle('announce'));
  routes.get('/scrape', handle('scrape'));

  return {
    routes,
    swarms() {
      const out: TrackerSwarm[] = [];
      for (const [infoHash, swarm] of Object.entries(server.torrents)) {
        const mine = heard.get(infoHash);
        const peers: TrackerPeer[] = [];
        // The package's LRU decides who is still in the swarm (it expires silent peers); peek keeps its order.
        for (const key of swarm.peers.keys) {
          const p = swarm.peers.peek(key);
          if (!p) continue;
          const heardPeer = mine?.get(key);
          const peer: TrackerPeer = heardPeer ? withoutStart(heardPeer) : { ip: p.ip, port: p.port, peerId: p.peerId, uploaded: 0, downloaded: 0, left: p.complete ? 0 : -1, complete: p.complete, lastAnnounce: '' };
          const neighbours = neighbourSwarms.get(infoHash)?.neighboursOf(key);
          peers.push(neighbours ? { ...peer, neighbours } : peer);
        }
        forgetExpired(infoHash);
        peers.sort((a, b) => a.ip.localeCompare(b.ip, 'en', { numeric: true }) || a.port - b.port);
        out.push({ infoHash, seeders: peers.filter((p) => p.complete).length, leechers: peers.filter((p) => !p.complete).length, peers });
      }
      return out.sort((a, b) => a.infoHash.localeCompare(b.infoHash));
    },
    prune() {
      for (const infoHash of Object.keys(server.torrents)) {
        if (opts.isKnown(infoHash)) continue;
        delete server.torrents[infoHash];
        heard.delete(infoHash);
        neighbourSwarms.get(infoHash)?.close();
        neighbourSwarms.delete(infoHash);
      }
      for (const infoHash of heard.keys()) if (!opts.isKnown(infoHash)) heard.delete(infoHash);
    },
    heardPeers() {
      let n = 0;
      for (const peers of heard.values()) n += peers.size;
      return n;
    },
    graphMembers() {
      let n = 0;
      for (const swarm of neighbourSwarms.values()) n += swarm.members();
      return n;
    },
    close() {
      for (const swarm of neighbourSwarms.values()) swarm.close();
      server.close();
    },
  };
}
