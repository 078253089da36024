/**
 * The seeder process: webtorrent seeding every catalogued image from its file in place. Started and restarted by
 * seeder.ts; it dies with its parent (IPC disconnect), so a killed server never leaves a seeder behind.
 */
import { readFileSync } from 'node:fs';
import type { Torrent } from 'webtorrent';
import { plainAddress } from '../model/ipv4.js';
import { superSeed, type SuperSeeding } from './seeder-child-superseed.js';
import { seederClient } from './seeder-client.js';
import type { FromSeeder, SeedImage, SeederChildConfig, SeedTorrentStats, ToSeeder } from './seeder-protocol.js';

const config = JSON.parse(process.argv[2] ?? '{}') as SeederChildConfig;
const send = (m: FromSeeder): void => {
  if (process.connected) process.send?.(m);
};
const log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => send({ type: 'log', level, msg, ...(fields ? { fields } : {}) });

const client = seederClient(config.port);
client.on('error', (err: Error) => {
  log('error', 'seeder client failed', { err: err.message });
  process.exit(1);
});
client.on('listening', () => send({ type: 'listening', port: client.torrentPort }));

interface Seeded {
  image: SeedImage;
  torrent: Torrent;
  superSeeding?: SuperSeeding;
  state: SeedTorrentStats['state'];
  error?: string;
}
const seeded = new Map<string, Seeded>();

function add(image: SeedImage): void {
  let bytes: Buffer;
  try {
    bytes = readFileSync(image.torrentFile);
  } catch (e) {
    log('error', 'image not seeded: cannot read its torrent', { image: image.name, err: (e as Error).message });
    return;
  }
  // path = the image directory: webtorrent hashes the existing file and seeds it where it is.
  const torrent = client.add(bytes, { path: image.dir, announce: [config.announce], private: true, uploads: config.uploadSlots });
  // webtorrent refuses a handshake from itself by comparing with the torrent's peerId, which it never sets. Our
  // tracker no longer hands an announcer its own address (tracker.ts), but before it did the seeder kept two
  // connections to itself, and super-seeding revealed pieces to them that nobody would ever fetch (they reached the
  // nodes only after the first round, at the very end of every install): the self-check stays armed.
  (torrent as unknown as { peerId?: string }).peerId ??= client.peerId;
  const entry: Seeded = { image, torrent, state: 'verifying' };
  if (config.superSeed) entry.superSeeding = superSeed(torrent);
  seeded.set(image.infoHash, entry);
  torrent.on('error', (err: Error) => {
    entry.state = 'failed';
    entry.error = err.message;
    log('error', 'image torrent failed', { image: image.name, err: err.message });
  });
  torrent.on('warning', (err: Error) => log('warn', 'image torrent warning', { image: image.name, err: err.message }));
  torrent.on('ready', () => {
    if (torrent.progress < 1) {
      // The server is the source of truth: a file that does not match its own torrent is never repaired from nodes.
      entry.state = 'failed';
      entry.error = `the image file does not match its torrent (${(torrent.progress * 100).toFixed(1)}% of pieces verify)`;
      log('error', 'image not seeded', { image: image.name, err: entry.error });
      torrent.destroy();
      return;
    }
    entry.state = 'seeding';
    log('info', 'seeding image', { image: image.name, infoHash: image.infoHash, port: client.torrentPort });
  });
}

function sync(images: SeedImage[]): void {
  const wanted = new Map(images.map((i) => [i.infoHash, i]));
  for (const [infoHash, entry] of seeded) {
    // A failed image is tried again on every sync (a rescan, a reload): the operator may have repaired its file.
    if (wanted.has(infoHash) && entry.state !== 'failed') continue;
    seeded.delete(infoHash);
    if (!entry.torrent.destroyed) entry.torrent.destroy();
    if (entry.state !== 'failed') log('info', 'stopped seeding image', { image: entry.image.name });
  }
  for (const image of wanted.values()) if (!seeded.has(image.infoHash)) add(image);
}

function stats(): SeedTorrentStats[] {
  return [...seeded.values()].map(({ image, torrent, state, error, superSeeding }) => {
    const firstRound = superSeeding?.firstRound();
    return {
      name: image.name,
      infoHash: image.infoHash,
      state,
      ...(error ? { error } : {}),
      uploaded: torrent.uploaded ?? 0,
      uploadSpeed: Math.round(torrent.uploadSpeed ?? 0),
      ...(firstRound ? { firstRound } : {}),
      peers: (torrent.wires ?? []).filter((w) => w.type !== 'webSeed' && w.remoteAddress).map((w) => ({ ip: plainAddress(w.remoteAddress!), port: w.remotePort ?? 0, uploaded: w.uploaded })),
    };
  });
}

process.on('message', (m: ToSeeder) => {
  if (m.type === 'images') sync(m.images);
  else if (m.type === 'connect') {
    // aria2c opens with an encrypted (MSE) handshake that webtorrent refuses, and retries in plain a second later;
    // the seeder's own plain handshake to the node saves that second at the start of every install.
    const entry = seeded.get(m.infoHash);
    if (entry?.state === 'seeding' && !entry.torrent.destroyed) entry.torrent.addPeer(`${m.ip}:${m.port}`);
  } else if (m.type === 'webseed-served') {
    const superSeeding = seeded.get(m.infoHash)?.superSeeding;
    for (const piece of m.pieces) superSeeding?.markHandedOut(piece);
  }
});
process.on('disconnect', () => process.exit(0));
setInterval(() => send({ type: 'stats', torrents: stats() }), config.statsMs).unref();
