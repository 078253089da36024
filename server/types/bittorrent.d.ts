// Minimal declarations for the ESM-only, untyped BitTorrent packages, covering only what rackseed uses.
declare module 'create-torrent' {
  interface CreateTorrentOptions {
    name?: string;
    creationDate?: Date;
    comment?: string;
    createdBy?: string;
    private?: boolean | number;
    pieceLength?: number;
    announceList?: string[][];
    urlList?: string[];
    onProgress?: (hashedLength: number, totalLength: number) => void;
  }
  function createTorrent(input: string | string[], opts: CreateTorrentOptions, cb: (err: Error | null, torrent: Buffer) => void): void;
  export default createTorrent;
}

declare module 'parse-torrent' {
  interface ParsedTorrent {
    infoHash: string;
    name?: string;
    private?: boolean;
    announce?: string[];
    urlList?: string[];
    pieceLength?: number;
    length?: number;
    files?: Array<{ path: string; name: string; length: number; offset: number }>;
    pieces?: string[];
    info?: Record<string, unknown>;
  }
  function parseTorrent(input: Buffer | Uint8Array | string): Promise<ParsedTorrent>;
  export default parseTorrent;
}

declare module 'bittorrent-tracker' {
  import type { EventEmitter } from 'node:events';
  import type { IncomingMessage, ServerResponse } from 'node:http';

  /** A parsed announce as the package hands it to filters and events (query counters stay strings). */
  export interface AnnounceParams {
    info_hash: string;
    peer_id: string;
    ip: string;
    port: number;
    numwant: number;
    event?: string;
    left: number;
    uploaded?: string;
    downloaded?: string;
    addr: string;
  }

  export interface TrackerServerOptions {
    http?: boolean;
    udp?: boolean;
    ws?: boolean;
    stats?: boolean;
    /** Milliseconds. */
    interval?: number;
    trustProxy?: boolean;
    peersCacheLength?: number;
    /** Milliseconds. */
    peersCacheTtl?: number;
    filter?: (infoHash: string, params: AnnounceParams, cb: (err: Error | null) => void) => void;
  }

  export interface SwarmPeer {
    type: string;
    complete: boolean;
    peerId: string;
    ip: string;
    port: number;
  }

  export interface AnnounceResponse {
    complete: number;
    incomplete: number;
    peers: SwarmPeer[];
    /** Seconds; the server fills in its own when absent. */
    interval?: number;
  }

  export interface Swarm {
    infoHash: string;
    complete: number;
    incomplete: number;
    peers: { readonly keys: string[]; peek(key: string): SwarmPeer | undefined };
    /** Records the announce and answers with up to params.numwant peers (cb is absent for a closed websocket). */
    announce(params: AnnounceParams, cb?: (err: Error | null, response?: AnnounceResponse) => void): void;
  }

  export class Server extends EventEmitter {
    constructor(opts?: TrackerServerOptions);
    torrents: Record<string, Swarm>;
    createSwarm(infoHash: string, cb: (err: Error | null, swarm?: Swarm) => void): void;
    onHttpRequest(req: IncomingMessage, res: ServerResponse, opts?: { action?: 'announce' | 'scrape'; trustProxy?: boolean }): void;
    close(cb?: () => void): void;
    on(event: 'start' | 'update' | 'complete' | 'stop' | 'pause', listener: (addr: string, params: AnnounceParams) => void): this;
    on(event: 'warning' | 'error', listener: (err: Error) => void): this;
  }
}

declare module 'webtorrent' {
  import type { EventEmitter } from 'node:events';

  export interface WebTorrentOptions {
    dht?: boolean;
    lsd?: boolean;
    utPex?: boolean;
    utp?: boolean;
    natUpnp?: boolean;
    natPmp?: boolean;
    webSeeds?: boolean;
    tracker?: false | { announce?: string[]; getAnnounceOpts?: () => Record<string, unknown> };
    torrentPort?: number;
    maxConns?: number;
    seedOutgoingConnections?: boolean;
  }

  export interface TorrentOptions {
    path?: string;
    announce?: string[];
    private?: boolean;
    /** Upload slots (unchoked peers). */
    uploads?: number;
    skipVerify?: boolean;
    alwaysChokeSeeders?: boolean;
  }

  export interface Wire {
    remoteAddress?: string;
    remotePort?: number;
    type?: string;
    uploaded: number;
    downloaded: number;
  }

  export interface Torrent extends EventEmitter {
    infoHash: string;
    name: string;
    length: number;
    uploaded: number;
    downloaded: number;
    uploadSpeed: number;
    progress: number;
    numPeers: number;
    done: boolean;
    ready: boolean;
    destroyed: boolean;
    wires: Wire[];
    /** Connects out to "ip:port" (ignored when already connected); false when refused. */
    addPeer(peer: string): boolean;
    destroy(opts?: { destroyStore?: boolean }, cb?: (err: Error | null) => void): void;
  }

  export default class WebTorrent extends EventEmitter {
    constructor(opts?: WebTorrentOptions);
    torrents: Torrent[];
    torrentPort: number;
    /** This client's peer id (hex). */
    peerId: string;
    add(torrentId: Buffer | Uint8Array | string, opts?: TorrentOptions, ontorrent?: (torrent: Torrent) => void): Torrent;
    remove(torrentId: Torrent | string, opts?: { destroyStore?: boolean }, cb?: (err: Error | null) => void): Promise<void>;
    destroy(cb?: (err: Error | null) => void): void;
  }
}
