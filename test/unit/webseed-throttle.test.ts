import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenBucket, WEBSEED_HEADER, webSeedImage, webSeedThrottle, type WebSeedMode, type WebSeedThrottle } from '../../server/net/http/webseed-throttle.js';

describe('TokenBucket', () => {
  it('lets a burst through at once, then makes callers wait bytes / rate', () => {
    const b = new TokenBucket(1000, 500, 0);
    expect(b.take(500, 0)).toBe(0);
    expect(b.take(250, 0)).toBe(250);
    // Reservations queue: the next caller waits behind the previous debt.
    expect(b.take(250, 0)).toBe(500);
  });

  it('refills with time, never beyond the burst', () => {
    const b = new TokenBucket(1000, 500, 0);
    b.take(500, 0);
    expect(b.take(100, 100)).toBe(0);
    expect(b.take(500, 10_000)).toBe(0);
    expect(b.take(1, 10_000)).toBeGreaterThan(0);
  });
});

describe('webSeedImage: which requests are web-seed requests', () => {
  const range = { range: 'bytes=0-1023' };
  it('a ranged GET or HEAD of an image tarball', () => {
    expect(webSeedImage('GET', '/images/debian12/rootfs.tar.zst', range)).toBe('debian12');
    expect(webSeedImage('HEAD', '/images/debian12/rootfs.tar.zst', range)).toBe('debian12');
    expect(webSeedImage('GET', '/images/a%20b/rootfs.tar.zst', range)).toBe('a b');
  });

  it('not a full-file GET (the installer HTTP fallback), other files, other methods or paths', () => {
    expect(webSeedImage('GET', '/images/debian12/rootfs.tar.zst', {})).toBeUndefined();
    expect(webSeedImage('GET', '/images/debian12/rootfs.tar.zst.torrent', range)).toBeUndefined();
    expect(webSeedImage('GET', '/images/debian12/manifest.json', range)).toBeUndefined();
    expect(webSeedImage('GET', '/installer/initrd.img', range)).toBeUndefined();
    expect(webSeedImage('GET', '/images/x/y/rootfs.tar.zst', range)).toBeUndefined();
    expect(webSeedImage('POST', '/images/debian12/rootfs.tar.zst', range)).toBeUndefined();
    expect(webSeedImage('GET', '/images/%E0%A4%A/rootfs.tar.zst', range)).toBeUndefined();
  });
});

describe('webSeedThrottle on a real express.static /files route (loopback)', () => {
  const SIZE = 1024 * 1024;
  let dir: string;
  let body: Buffer;
  let server: Server;
  let base: string;
  let seeding = true;
  let throttle: WebSeedThrottle;
  const modes: Array<[string, WebSeedMode]> = [];
  const served: Array<[string, number, number]> = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rackseed-webseed-'));
    mkdirSync(path.join(dir, 'images', 'img'), { recursive: true });
    body = randomBytes(SIZE);
    writeFileSync(path.join(dir, 'images', 'img', 'rootfs.tar.zst'), body);
    // 4 Mbit/s (500 kB/s, a 256 KiB burst): a 1 MiB body cannot go out without waiting for the bucket.
    throttle = webSeedThrottle({ rateMbit: 4, isImage: (name) => name === 'img', seeding: () => seeding, onModeChange: (image, mode) => modes.push([image, mode]), onServed: (image, start, end) => served.push([image, start, end]) });
    const app = express();
    app.use('/files', throttle.middleware);
    app.use('/files', express.static(dir, { dotfiles: 'deny', index: false, fallthrough: false, redirect: false }));
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/files/images/img/rootfs.tar.zst`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('paces a ranged request while the image is seeded and keeps the bytes intact and in order', async () => {
    seeding = true;
    const before = throttle.stats();
    const res = await fetch(base, { headers: { range: `bytes=1000-${SIZE - 1}` } });
    expect(res.status).toBe(206);
    expect(res.headers.get(WEBSEED_HEADER)).toBe('throttled');
    expect(Buffer.from(await res.arrayBuffer()).equals(body.subarray(1000))).toBe(true);
    const after = throttle.stats();
    expect(after.throttledRequests).toBe(before.throttledRequests + 1);
    // How much waited depends on how fast this host reads the file; that something did is the behaviour.
    expect(after.delayedBytes).toBeGreaterThan(before.delayedBytes);
    expect(modes).toContainEqual(['img', 'throttled']);
  });

  it('reports the byte range a throttled response has sent so far, growing to the whole range', async () => {
    seeding = true;
    served.length = 0;
    const res = await fetch(base, { headers: { range: `bytes=4096-${SIZE - 1}` } });
    await res.arrayBuffer();
    expect(served.length).toBeGreaterThan(1);
    expect(served.every(([image, start]) => image === 'img' && start === 4096)).toBe(true);
    const ends = served.map(([, , end]) => end);
    expect(ends).toEqual([...ends].sort((a, b) => a - b));
    expect(ends.at(-1)).toBe(SIZE);
  });

  it('serves at full speed when the seeder does not cover the image', async () => {
    seeding = false;
    const before = throttle.stats();
    const res = await fetch(base, { headers: { range: 'bytes=0-' } });
    expect(res.headers.get(WEBSEED_HEADER)).toBe('full');
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
    const after = throttle.stats();
    expect(after.fullSpeedRequests).toBe(before.fullSpeedRequests + 1);
    expect(after.delayedBytes).toBe(before.delayedBytes);
    expect(modes.at(-1)).toEqual(['img', 'full']);
  });

  it('releases a response under way as soon as the seeder goes down', async () => {
    seeding = true;
    const before = throttle.stats();
    const res = await fetch(base, { headers: { range: 'bytes=0-' } });
    expect(res.headers.get(WEBSEED_HEADER)).toBe('throttled');
    const reader = res.body!.getReader();
    const chunks: Buffer[] = [];
    const first = await reader.read();
    chunks.push(Buffer.from(first.value!));
    seeding = false;
    for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(Buffer.from(r.value));
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
    // Only what was queued before the switch waited (a chunk or two); paced to the end, ~768 KiB would have.
    expect(throttle.stats().delayedBytes - before.delayedBytes).toBeLessThan(SIZE / 2);
    expect(modes.at(-1)).toEqual(['img', 'full']);
  });

  it('leaves full-file GETs and names that are not images alone', async () => {
    seeding = true;
    const before = throttle.stats();
    const res = await fetch(base);
    expect(res.status).toBe(200);
    expect(res.headers.get(WEBSEED_HEADER)).toBeNull();
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
    const missing = await fetch(base.replace('/img/', '/nope/'), { headers: { range: 'bytes=0-' } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get(WEBSEED_HEADER)).toBeNull();
    expect(throttle.stats()).toEqual(before);
    expect(modes.some(([image]) => image === 'nope')).toBe(false);
  });

  it('a Range the server answers with the whole file (stale If-Range, several ranges) is a plain download: not paced', async () => {
    seeding = true;
    const cases: Array<Record<string, string>> = [{ range: 'bytes=0-1023', 'if-range': '"stale-etag"' }, { range: 'bytes=0-9,20-29' }];
    for (const headers of cases) {
      const before = throttle.stats();
      const res = await fetch(base, { headers });
      expect(res.status).toBe(200);
      expect(res.headers.get(WEBSEED_HEADER)).toBe('full');
      expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
      const after = throttle.stats();
      expect(after.delayedBytes).toBe(before.delayedBytes);
      expect(after.fullSpeedRequests).toBe(before.fullSpeedRequests + 1);
      expect(after.throttledRequests).toBe(before.throttledRequests);
    }
  });

  it('never paces with rate 0', async () => {
    const unlimited = webSeedThrottle({ rateMbit: 0, isImage: () => true, seeding: () => true });
    const app = express();
    app.use('/files', unlimited.middleware);
    app.use('/files', express.static(dir, { index: false, fallthrough: false }));
    const s = await new Promise<Server>((resolve) => {
      const x = app.listen(0, '127.0.0.1', () => resolve(x));
    });
    try {
      const res = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/files/images/img/rootfs.tar.zst`, { headers: { range: 'bytes=0-' } });
      expect(res.headers.get(WEBSEED_HEADER)).toBe('full');
      expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
      expect(unlimited.stats()).toEqual({ throttledRequests: 0, fullSpeedRequests: 1, delayedBytes: 0 });
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });
});
