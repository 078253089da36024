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
