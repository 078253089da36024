import createTorrent from 'create-torrent';
import parseTorrent from 'parse-torrent';

export interface TorrentSpec {
  /** The single file the torrent describes (an image's rootfs tarball). */
  file: string;
  /** Tracker announce URLs, one tier each in order (several servers list all of theirs). */
  announce: string[];
  /** HTTP URLs of the same file (BEP 19 web seeds): the swarm falls back to them piece by piece. */
  webSeeds: string[];
  /** Piece size in bytes (a power of two); default chosen from the file size. */
  pieceLength?: number;
  onProgress?: (hashed: number, total: number) => void;
}

export interface MadeTorrent {
  bytes: Buffer;
  infoHash: string;
  pieceLength: number;
}

const PIECES_PER_IMAGE = 4096;

/**
 * Piece size for an image: about 4096 pieces (a power of two from 64 KiB to 4 MiB). A node tells its peers about
 * new pieces in batches (aria2c sends HAVEs 20 pieces at a time, or after 10 s), so a piece spreads one hop per
 * batch; smaller pieces make that batch, and so each hop, shorter. 4096 hashes are 80 KiB of torrent. Measured with
 * bench:fanout (16 nodes, 256 MiB, interleaved runs): 64 KiB pieces gave a median node of 27.4-29.0 s against
 * 28.3-30.4 s with 128 KiB, 30.0-30.5 s with 256 KiB and 36-48 s with 512 KiB; 32 KiB was no better than 64 KiB
 * and 16 KiB was 10 s slower, hence the 64 KiB floor.
 */
export function defaultPieceLength(size: number): number {
  const KiB = 1024;
  let pieceLength = 64 * KiB;
  while (pieceLength < 4 * 1024 * KiB && size / pieceLength > PIECES_PER_IMAGE) pieceLength *= 2;
  return pieceLength;
}

/**
 * The pieces wholly inside the byte range [start, end) of a file of `size` bytes cut into `pieceLength` pieces (the
 * last piece may be short). A web-seed response that stopped halfway through a piece delivered no usable piece.
 */
export function piecesWithin(start: number, end: number, pieceLength: number, size: number): number[] {
  if (!(pieceLength > 0) || !(start >= 0) || !(end > start)) return [];
  const stop = Math.min(end, size);
  const pieces: number[] = [];
  for (let piece = Math.ceil(start / pieceLength); piece * pieceLength < stop; piece++) {
    const pieceEnd = Math.min((piece + 1) * pieceLength, size);
    if (pieceEnd <= stop) pieces.push(piece);
  }
  return pieces;
}

const FIXED_CREATION_MS = 1000;

/**
 * One private single-file torrent: no DHT or PEX by flag, only our trackers, plus web seeds. A fixed creation date
 * and no "created by", so the same file always gives the same bytes (and a reproducible info-hash).
 */
export async function makeTorrent(spec: TorrentSpec, size: number): Promise<MadeTorrent> {
  const pieceLength = spec.pieceLength ?? defaultPieceLength(size);
  const bytes = await new Promise<Buffer>((resolve, reject) =>
    createTorrent(
      spec.file,
      {
        private: true,
        pieceLength,
        announceList: spec.announce.map((a) => [a]),
        urlList: spec.webSeeds,
        // create-torrent always writes a creation date and reads 0 as "now": one second after the epoch keeps the
        // bytes the same for the same file. No createdBy: the key is then left out.
        creationDate: new Date(FIXED_CREATION_MS),
        ...(spec.onProgress ? { onProgress: spec.onProgress } : {}),
      },
      // create-torrent hands back a Uint8Array, not the Buffer its typings promise.
      (err, torrent) => (err ? reject(err) : resolve(Buffer.from(torrent))),
    ),
  );
  const parsed = await parseTorrent(bytes);
  return { bytes, infoHash: parsed.infoHash, pieceLength };
}

export async function readTorrent(bytes: Buffer): Promise<{ infoHash: string; announce: string[]; urlList: string[]; pieceLength: number; length: number; private: boolean }> {
  const t = await parseTorrent(bytes);
  return { infoHash: t.infoHash, announce: t.announce ?? [], urlList: t.urlList ?? [], pieceLength: t.pieceLength ?? 0, length: t.length ?? 0, private: t.private === true };
}
