import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { IMAGE_FILES } from '../../model/image.js';

/**
 * The torrent's web seed (BEP 19 url-list) is this server's /files route. BitTorrent clients (aria2c) fetch pieces
 * from it in parallel with peers, so while the seeder is healthy every web-seed byte competes for the server's
 * uplink with a seeder byte and mostly duplicates it. Web-seed requests are therefore slowed to a small total rate
 * per image while this server seeds that image, and served at full speed when the seeder is down or not seeding it:
 * the web seed stays the swarm's piece-by-piece fallback without being its competitor. Plain full-file GETs (the
 * installer's HTTP fallback) are never touched.
 */

/** Header on every web-seed response, so clients' logs (and tests) show which way it was served. */
export const WEBSEED_HEADER = 'X-Rackseed-Webseed';

/** A token bucket in bytes: `take` reserves bytes and says how long until they are covered (debt is allowed). */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly burstBytes: number,
    now: number,
  ) {
    this.tokens = burstBytes;
    this.at = now;
  }

  /** Milliseconds the caller must wait before sending `bytes` (0: at once). Reservations queue up in call order. */
  take(bytes: number, now: number): number {
    this.tokens = Math.min(this.burstBytes, this.tokens + ((now - this.at) / 1000) * this.bytesPerSecond);
    this.at = now;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.bytesPerSecond) * 1000;
  }
}

/**
 * The image a web-seed request is for, or undefined. A web-seed request is a GET (or HEAD) with a Range header for
 * an image tarball (`/images/<name>/rootfs.tar.zst` below /files); BitTorrent clients always ask for ranges,
 * the installer's HTTP fallback asks for the whole file.
 */
export function webSeedImage(method: string, urlPath: string, headers: IncomingHttpHeaders): string | undefined {
  if ((method !== 'GET' && method !== 'HEAD') || typeof headers.range !== 'string') return undefined;
  const m = /^\/images\/([^/]+)\/([^/]+)$/.exec(urlPath);
  if (!m || m[2] !== IMAGE_FILES.rootfs) return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return undefined;
  }
}

export interface WebSeedThrottleStats {
  /** Web-seed requests answered at the throttled rate, and at full speed. */
  throttledRequests: number;
  fullSpeedRequests: number;
  /** Bytes of throttled responses that had to wait for the bucket. */
  delayedBytes: number;
}

export type WebSeedMode = 'throttled' | 'full';

export interface WebSeedThrottleOptions {
  /** Total web-seed rate per image while this server seeds it, in Mbit/s; 0: no throttle at all. */
  rateMbit: number;
  /** Whether the name is a catalogued image (anything else is left to the static route, uncounted). */
  isImage: (image: string) => boolean;
  /** Whether this server's seeder is healthy and seeding the named image right now. */
  seeding: (image: string) => boolean;
  /**
   * Called while a throttled web-seed response goes out, with the byte range of the file sent so far, [start, end):
   * the seeder then knows those pieces are in the swarm already and does not send them again.
   */
  onServed?: (image: string, start: number, end: number) => void;
  /** Called when an image's web seed goes from throttled to full speed or back (first use included). */
  onModeChange?: (image: string, mode: WebSeedMode) => void;
  now?: () => number;
}

export interface WebSeedThrottle {
  /** Mount before the static /files route: `app.use('/files', throttle.middleware)`. */
  middleware: RequestHandler;
  stats(): WebSeedThrottleStats;
}

type Write = (chunk: unknown, encoding?: unknown, cb?: unknown) => boolean;

const chunkBytes = (chunk: unknown): number => (typeof chunk === 'string' ? Buffer.byteLength(chunk) : ((chunk as { length?: number }).length ?? 0));
type End = (chunk?: unknown, encoding?: unknown, cb?: unknown) => ServerResponse;

/**
 * Paces a response through `bucket` by wrapping write/end. Whoever streams into `res` (send's pipe) sees `false`
 * from write while a chunk waits and a 'drain' once it went out, which is the backpressure contract pipe obeys;
 * end() is queued behind the waiting chunks so the body stays in order. `throttling` is asked per chunk: a response
 * that started while the seeder was up goes on at full speed the moment it is down.
 */
function paceResponse(res: Response, bucket: TokenBucket, throttling: () => boolean, now: () => number, onDelayed: (bytes: number) => void, onSent: (bytes: number) => void): void {
  const original = res.write.bind(res) as Write;
  const write: Write = (chunk, encoding, cb) => {
    const ok = original(chunk, encoding, cb);
    onSent(chunkBytes(chunk));
    return ok;
  };
  const end = res.end.bind(res) as End;
  let queue: Promise<void> = Promise.resolve();
  let waiting = 0;
  let closed = false;
  res.once('close', () => (closed = true));

  const later = (ms: number, fn: () => void) => {
    waiting += 1;
    queue = queue.then(
      () =>
        new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            res.off('close', done);
            waiting -= 1;
            resolve();
          };
          const timer = setTimeout(() => {
            if (!closed) fn();
            done();
          }, ms);
          // A client that hangs up must not keep its chunks (or the process) waiting.
          res.once('close', done);
        }),
    );
  };

  (res as unknown as { write: Write }).write = (chunk, encoding, cb) => {
    const bytes = chunkBytes(chunk);
    const wait = throttling() ? bucket.take(bytes, now()) : 0;
    if (wait <= 0 && waiting === 0) return write(chunk, encoding, cb);
    if (wait > 0) onDelayed(bytes);
    later(wait, () => {
      // The last waiting chunk out: let the pipe go on, unless the socket itself wants it to wait.
      if (write(chunk, encoding, cb) && waiting === 1) res.emit('drain');
    });
    return false;
  };
  (res as unknown as { end: End }).end = (chunk, encoding, cb) => {
    if (waiting === 0) return end(chunk, encoding, cb);
    later(0, () => end(chunk, encoding, cb));
    return res;
  };
}

/** One bucket per image; its burst is a quarter second of rate (at least one 256 KiB piece, so a piece goes in one go). */
export function webSeedThrottle(opts: WebSeedThrottleOptions): WebSeedThrottle {
  const now = opts.now ?? (() => Date.now());
  const bytesPerSecond = (opts.rateMbit * 1e6) / 8;
  const buckets = new Map<string, TokenBucket>();
  const modes = new Map<string, WebSeedMode>();
  // Asked per request and per chunk: the seeder's health is read from memory, so this is cheap.
  const modeOf = (image: string): WebSeedMode => {
    const mode: WebSeedMode = opts.rateMbit > 0 && opts.seeding(image) ? 'throttled' : 'full';
    if (modes.get(image) !== mode) {
      modes.set(image, mode);
      opts.onModeChange?.(image, mode);
    }
    return mode;
  };
  const stats: WebSeedThrottleStats = { throttledRequests: 0, fullSpeedRequests: 0, delayedBytes: 0 };
  const bucketFor = (image: string): TokenBucket => {
    let b = buckets.get(image);
    if (!b) {
      b = new TokenBucket(bytesPerSecond, Math.max(256 * 1024, bytesPerSecond / 4), now());
      buckets.set(image, b);
    }
    return b;
  };

  const middleware = (req: Request, res: Response, next: NextFunction): void => {
    const image = webSeedImage(req.method, req.path, req.headers);
    if (image === undefined || !opts.isImage(image)) {
      next();
      return;
    }
    if (modeOf(image) === 'full') {
      stats.fullSpeedRequests += 1;
      res.setHeader(WEBSEED_HEADER, 'full');
      next();
      return;
    }
    // Only a 206 is a piece of the file. A Range the server ignores (a stale If-Range, several ranges) gets the whole
    // file as a 200, as RFC 9110 says, and that is the same download as a plain GET: never paced.
    const partial = () => res.statusCode === 206;
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => Response;
    (res as unknown as { writeHead: (...args: unknown[]) => Response }).writeHead = (...args: unknown[]) => {
      const status = typeof args[0] === 'number' ? args[0] : res.statusCode;
      if (status === 206) stats.throttledRequests += 1;
      else stats.fullSpeedRequests += 1;
      res.setHeader(WEBSEED_HEADER, status === 206 ? 'throttled' : 'full');
      return writeHead(...args);
    };
    // Only a plain "bytes=N-" or "bytes=N-M" range is one contiguous piece of the file (what BitTorrent clients send).
    const first = /^bytes=(\d+)-\d*$/.exec(req.headers.range ?? '');
    const start = first ? Number(first[1]) : undefined;
    let sent = 0;
    const onSent = (bytes: number) => {
      sent += bytes;
      if (start !== undefined && partial()) opts.onServed?.(image, start, start + sent);
    };
    paceResponse(res, bucketFor(image), () => partial() && modeOf(image) === 'throttled', now, (bytes) => (stats.delayedBytes += bytes), onSent);
    next();
  };
  return { middleware, stats: () => ({ ...stats }) };
}
