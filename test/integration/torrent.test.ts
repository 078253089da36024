import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTorrent, readTorrent } from '../../server/images/torrent.js';
import { Netns } from '../support/netns.js';
import { startRackseedProcess, type RackseedProcess } from '../support/rackseed-process.js';
import { btHandshake, writeTestImage, type TestImage } from '../support/swarm.js';
import { waitFor } from '../support/wait.js';

/**
 * The image torrent against an independent maker (transmission-create), and the tracker as a BitTorrent client
 * sees it: rackseed runs in a namespace (sv, 10.0.0.1 on a bridge), announces are sent with curl from inside it.
 */
const URL = 'http://10.0.0.1:8080';

let work: string;
let netns: Netns;
let sv: string;
let rs: RackseedProcess;
let image: TestImage;

/** Percent-encodes every byte, as BitTorrent clients send info_hash and peer_id. */
const pct = (bytes: Buffer) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

/** The raw bencoded answer (binary: compact peers), read back as latin1 so every byte stays one character. */
function announce(infoHashHex: string, port: number, left: number): string {
  const q = `info_hash=${pct(Buffer.from(infoHashHex, 'hex'))}&peer_id=${pct(Buffer.from('-XX0001-abcdefghijkl'))}&port=${port}&uploaded=0&downloaded=0&left=${left}&compact=1&event=started`;
  const out = path.join(work, 'announce.out');
  const r = netns.run(sv, 'curl', ['-s', '--max-time', '5', '-o', out, `${URL}/announce?${q}`]);
  if (r.status !== 0) throw new Error(`curl failed (${r.status}): ${r.stderr}`);
  return readFileSync(out).toString('latin1');
}

interface SwarmView {
  seeder: { running: boolean; pid?: number; port?: number };
  images: Array<{ name: string; infoHash: string; seeders: number; peers: Array<{ ip: string; port: number; complete: boolean }>; seeder: { state: string } | null }>;
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-torrent-'));
  netns = new Netns();
  sv = netns.addNamespace('sv');
  const br = netns.addBridge(sv, 'br');
  netns.addAddress(sv, br, '10.0.0.1/24');
  rs = await startRackseedProcess({ netns, ns: sv, httpAddress: '10.0.0.1', config: 'tftp:\n  enabled: false\n', inventory: 'cluster:\n  name: t\n' });
  image = await writeTestImage(path.join(rs.dir, 'data'), { name: 'tiny', size: 3 * 1024 * 1024 + 12345, publicUrl: URL });
  const token = readFileSync(path.join(rs.dir, 'data', 'admin-token'), 'utf8').trim();
  const r = netns.run(sv, 'curl', ['-sf', '-X', 'POST', '-H', `Authorization: Bearer ${token}`, `${URL}/api/v1/images/rescan`]);
  expect(r.status).toBe(0);
});

afterAll(async () => {
  await rs?.stop();
  netns?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('image torrents', () => {
  it('makeTorrent gives the info-hash transmission-create gives for the same file, tracker and private flag', async () => {
    const file = path.join(work, 'rootfs.tar.zst');
    writeFileSync(file, readFileSync(path.join(image.dir, 'rootfs.tar.zst')));
    for (const kib of [64, 256]) {
      const ours = await makeTorrent({ file, announce: [`${URL}/announce`], webSeeds: [`${URL}/files/images/tiny/rootfs.tar.zst`], pieceLength: kib * 1024 }, image.size);
      const out = path.join(work, `t${kib}.torrent`);
      execFileSync('transmission-create', ['-p', '-s', String(kib), '-t', `${URL}/announce`, '-o', out, file], { stdio: 'ignore' });
      const theirs = await readTorrent(readFileSync(out));
      expect(theirs.private).toBe(true);
      expect(ours.infoHash).toBe(theirs.infoHash);
    }
  });

  it('the stored torrent is private and names our tracker and our HTTP file route as web seed', async () => {
    const t = await readTorrent(readFileSync(path.join(image.dir, 'rootfs.tar.zst.torrent')));
    expect(t).toMatchObject({ infoHash: image.infoHash, private: true, announce: [`${URL}/announce`], urlList: [`${URL}/files/images/tiny/rootfs.tar.zst`], length: image.size });
  });
});

describe('tracker', () => {
  it('refuses an info-hash that is not a catalogued image', () => {
    const body = announce('0123456789abcdef0123456789abcdef01234567', 6999, 100);
    expect(body).toMatch(/failure reason\d+:unknown torrent/);
    expect(body).not.toMatch(/8:interval/);
  });

  it('answers a catalogued image (a starting leecher every second, a seeder at the 20 s interval) and lists the server\'s seeder at its public address', async () => {
    // The seeder's own announce registers 10.0.0.1:6881 as a complete peer.
    const view = await waitFor('the seeder in the swarm', () => {
      const v = rs.api<SwarmView>('/swarm');
      const img = v.images.find((i) => i.name === 'tiny');
      return img?.seeder?.state === 'seeding' && img.peers.some((p) => p.ip === '10.0.0.1' && p.port === 6881 && p.complete) ? v : undefined;
    }, 20_000, 200);
    expect(view.seeder).toMatchObject({ running: true, port: 6881 });
    const body = announce(image.infoHash, 7000, 100);
    expect(body).toMatch(/8:intervali1e/);
    expect(announce(image.infoHash, 7001, 0)).toMatch(/8:intervali20e/);
    expect(body).not.toMatch(/failure reason/);
    // Compact peers: the seeder's 6 bytes (10.0.0.1:6881) are among them.
    expect(Buffer.from(body, 'latin1').includes(Buffer.from([10, 0, 0, 1, 0x1a, 0xe1]))).toBe(true);
  });

  it('the seeder lists a peer that connected to it by its IPv4 address, not IPv4-mapped (::ffff:)', async () => {
    // A BitTorrent handshake for the image from inside the namespace, then the connection is held open: the seeder's
    // listener is dual-stack, so Node reports this peer as ::ffff:10.0.0.1 unless the seeder unmaps it.
    const handshake = btHandshake(image.infoHash, Buffer.from('-XX0001-incomingpeer'));
    const escaped = [...handshake].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
    const peer = netns.spawn(sv, 'bash', ['-c', `exec 3<>/dev/tcp/10.0.0.1/6881 && printf '%b' '${escaped}' >&3 && exec sleep 30`]);
    try {
      type Seeder = { seeder: { peers: Array<{ ip: string; port: number }> } | null };
      const peers = await waitFor('the seeder listing the incoming peer', () => {
        const listed = rs.api<{ images: Array<{ name: string } & Seeder> }>('/swarm').images.find((i) => i.name === 'tiny')?.seeder?.peers ?? [];
        return listed.length > 0 ? listed : undefined;
      }, 15_000, 200);
      expect(peers.map((p) => p.ip)).toEqual(['10.0.0.1']);
    } finally {
      peer.kill();
    }
  });

  it('scrape reports the image\'s swarm', () => {
    const r = netns.run(sv, 'curl', ['-s', '--max-time', '5', `${URL}/scrape?info_hash=${pct(Buffer.from(image.infoHash, 'hex'))}`]);
    // (bittorrent-tracker writes the binary info-hash key UTF-8 encoded; clients here never scrape, so it stays.)
    expect(r.stdout).toMatch(/5:filesd\d+:/);
    expect(r.stdout).toMatch(/8:completei[1-9]/);
  });
});
