/** Messages between the server (parent) and its seeder child process, over Node's IPC channel (JSON). */

export interface SeederChildConfig {
  /** TCP port peers connect to (0: any free port). */
  port: number;
  /** Our tracker's announce URL at the server's public address, so peers are told the provisioning address. */
  announce: string;
  /** Peers unchoked at once per torrent. */
  uploadSlots: number;
  /** Approximate super-seeding (seeder-superseed.ts): each piece to one peer first, peers spread it. */
  superSeed: boolean;
  /** How often the child reports its counters. */
  statsMs: number;
}

export interface SeedImage {
  name: string;
  infoHash: string;
  /** The stored .torrent file. */
  torrentFile: string;
  /** The image directory: the torrent's single file lives here. */
  dir: string;
}

export type ToSeeder =
  | { type: 'images'; images: SeedImage[] }
  /** Pieces the web seed sent whole to some node while this seeder seeded the torrent (super-seeding skips them). */
  | { type: 'webseed-served'; infoHash: string; pieces: number[] }
  /** A node joined the swarm at the tracker: connect to it now instead of waiting for it (or the next announce). */
  | { type: 'connect'; infoHash: string; ip: string; port: number };

export type SeedState = 'verifying' | 'seeding' | 'failed';

export interface SeedPeerStats {
  ip: string;
  port: number;
  uploaded: number;
}

export interface SeedTorrentStats {
  name: string;
  infoHash: string;
  state: SeedState;
  error?: string;
  uploaded: number;
  /** Bytes per second. */
  uploadSpeed: number;
  /**
   * Super-seeding's first round: pieces handed out to some node (or sent by the web seed), of how many. Until it is
   * complete some piece is still only on the server, so no node can finish; absent before the first peer.
   */
  firstRound?: { pieces: number; of: number };
  peers: SeedPeerStats[];
}

export type FromSeeder =
  | { type: 'listening'; port: number }
  | { type: 'stats'; torrents: SeedTorrentStats[] }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> };
