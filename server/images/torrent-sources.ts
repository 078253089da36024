import { RackseedError } from '../model/errors.js';

/**
 * Where a torrent sends a node: tracker tiers (BEP 12 announce-list) and web seeds (BEP 19 url-list). Pure: the
 * torrent is rewritten at serve time from the servers sharing the store, so one image file serves every server.
 */
export interface TorrentSources {
  /** Tracker tiers in order of preference; a client tries a later tier only when every tracker before it failed. */
  tiers: string[][];
  /** HTTP URLs of the file itself, any of which may serve any piece. */
  webSeeds: string[];
}

/** One server as the torrent needs it. */
export interface TorrentServer {
  name: string;
  /** Base URL without a trailing slash. */
  publicUrl: string;
  tracker: boolean;
  /** What this server holds of the image, undefined when it does not hold it. */
  image?: { sha256: string; infoHash: string };
}

/**
 * This server's tracker first (its nodes find each other there), then, as one fallback tier, the trackers of the
 * other live servers holding the same image: a node whose server goes down re-announces to another server, whose
 * seeder has the image too. Web seeds: this server's file, then every other server holding the identical file
 * (same sha256 and info-hash: a server with a different build of the same name must never serve its pieces).
 */
export function torrentSources(
  self: TorrentServer & { image: { sha256: string; infoHash: string } },
  others: readonly TorrentServer[],
  filePath: string,
): TorrentSources {
  const same = (o: TorrentServer) =>
    o.name !== self.name && o.image !== undefined && o.image.sha256 === self.image.sha256 && o.image.infoHash === self.image.infoHash;
  const peers = others.filter(same).sort((a, b) => a.name.localeCompare(b.name));
  const announce = (s: TorrentServer) => `${s.publicUrl}/announce`;
  const tiers: string[][] = [];
  if (self.tracker) tiers.push([announce(self)]);
  const fallback = peers.filter((p) => p.tracker).map(announce);
  if (fallback.length > 0) tiers.push(fallback);
  return { tiers, webSeeds: [self, ...peers].map((s) => `${s.publicUrl}${filePath}`) };
}

const D = 0x64; // 'd'
const E = 0x65; // 'e'
const I = 0x69; // 'i'
const L = 0x6c; // 'l'
const COLON = 0x3a;

function malformed(why: string, at: number): never {
  throw new RackseedError('INTERNAL', `malformed torrent: ${why} at byte ${at}`, { at });
}

/** Index just past the bencoded value starting at `pos`. */
function skipValue(b: Uint8Array, pos: number, depth = 0): number {
  if (depth > 64) malformed('nested too deeply', pos);
  const c = b[pos];
  if (c === undefined) malformed('unexpected end', pos);
  if (c === I) {
    const end = b.indexOf(E, pos + 1);
    if (end < 0) malformed('unterminated integer', pos);
    return end + 1;
  }
  if (c === L || c === D) {
    let p = pos + 1;
    while (b[p] !== E) {
      if (p >= b.length) malformed('unterminated list or dictionary', pos);
      p = skipValue(b, p, depth + 1);
    }
    return p + 1;
  }
  return readString(b, pos).end;
}

function readString(b: Uint8Array, pos: number): { start: number; end: number } {
  let p = pos;
  let len = 0;
  while (b[p] !== COLON) {
    const c = b[p];
    if (c === undefined || c < 0x30 || c > 0x39 || p - pos > 10) malformed('bad string length', pos);
    len = len * 10 + (c - 0x30);
    p++;
  }
  if (p === pos) malformed('bad string length', pos);
  const start = p + 1;
  const end = start + len;
  if (end > b.length) malformed('string runs past the end', pos);
  return { start, end };
}

const enc = new TextEncoder();

function bstr(s: string): Uint8Array {
  const bytes = enc.encode(s);
  return concat([enc.encode(`${bytes.length}:`), bytes]);
}

function blist(items: Uint8Array[]): Uint8Array {
  return concat([Uint8Array.of(L), ...items, Uint8Array.of(E)]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * The same torrent with `announce`, `announce-list` and `url-list` replaced. Every other top-level value is copied
 * byte for byte, the info dictionary included, so the info-hash (SHA-1 of those bytes) cannot change; only the
 * top-level dictionary is re-assembled, keys in byte order as bencoding requires. With no tiers the torrent keeps
 * whatever trackers it had.
 */
export function withSources(torrent: Uint8Array, sources: TorrentSources): Uint8Array {
  if (torrent[0] !== D) malformed('not a dictionary', 0);
  const entries: Array<{ key: Uint8Array; value: Uint8Array }> = [];
  let p = 1;
  while (torrent[p] !== E) {
    if (p >= torrent.length) malformed('unterminated dictionary', 0);
    const k = readString(torrent, p);
    const valueEnd = skipValue(torrent, k.end);
    entries.push({ key: torrent.subarray(k.start, k.end), value: torrent.subarray(k.end, valueEnd) });
    p = valueEnd;
  }
  if (p + 1 !== torrent.length) malformed('trailing bytes', p + 1);

  const replaced = new Set(['url-list', ...(sources.tiers.length > 0 ? ['announce', 'announce-list'] : [])]);
  const dec = new TextDecoder();
  const kept = entries.filter((e) => !replaced.has(dec.decode(e.key)));
  const added: Array<{ key: Uint8Array; value: Uint8Array }> = [];
  const first = sources.tiers[0]?.[0];
  if (first !== undefined) {
    added.push({ key: enc.encode('announce'), value: bstr(first) });
    added.push({ key: enc.encode('announce-list'), value: blist(sources.tiers.map((tier) => blist(tier.map(bstr)))) });
  }
  if (sources.webSeeds.length > 0) added.push({ key: enc.encode('url-list'), value: blist(sources.webSeeds.map(bstr)) });
  const all = [...kept, ...added].sort((a, b) => compareBytes(a.key, b.key));
  return concat([Uint8Array.of(D), ...all.flatMap((e) => [enc.encode(`${e.key.length}:`), e.key, e.value]), Uint8Array.of(E)]);
}
