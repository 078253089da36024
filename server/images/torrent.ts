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

/**
 * Piece size for an image: pieces small enough that a new node has something to share early, large enough that the
 * piece list stays small (1 GiB in 1 MiB pieces is 1024 hashes, 20 KiB of torrent).
 */
export function defaultPieceLength(size: number): number {
  const MiB = 1024 * 1024;
  if (size <= 256 * MiB) return 256 * 1024;
  if (size <= 2048 * MiB) return MiB;
  return 4 * MiB;
}

/**
 * One private single-file torrent: no DHT or PEX by flag, only our trackers, plus web seeds. No creation date and
 * no "created by", so the same file always gives the same bytes (and a reproducible info-hash).
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
        createdBy: '',
        creationDate: new Date(0),
        ...(spec.onProgress ? { onProgress: spec.onProgress } : {}),
      },
      (err, torrent) => (err ? reject(err) : resolve(torrent)),
    ),
  );
  const parsed = await parseTorrent(bytes);
  return { bytes, infoHash: parsed.infoHash, pieceLength };
}

export async function readTorrent(bytes: Buffer): Promise<{ infoHash: string; announce: string[]; urlList: string[]; pieceLength: number; length: number; private: boolean }> {
  const t = await parseTorrent(bytes);
  return { infoHash: t.infoHash, announce: t.announce ?? [], urlList: t.urlList ?? [], pieceLength: t.pieceLength ?? 0, length: t.length ?? 0, private: t.private === true };
}
