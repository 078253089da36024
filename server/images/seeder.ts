import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import { IMAGE_FILES, type ImageRecord } from '../model/image.js';
import type { FromSeeder, SeedImage, SeederChildConfig, SeedTorrentStats, ToSeeder } from './seeder-protocol.js';

export interface SeederOptions extends Omit<SeederChildConfig, 'statsMs'> {
  /** First delay before restarting a seeder that died; doubles on each crash in a row, up to 5 minutes. */
  restartSeconds: number;
  /** A process that has sent no stats for this long is hung: it is killed, and restarted as after a crash. */
  hungSeconds: number;
  log: Logger;
}

export interface SeedTorrentStatus extends SeedTorrentStats {
  /** Pieces the web seed delivered whole while this seeder process seeded the torrent (super-seeding skips them). */
  webSeedPieces: number;
}

export interface SeederStatus {
  /** A seeder process is up and has reported within the last few seconds. */
  running: boolean;
  /** Up but silent (no stats for more than a few seconds): killed once silent for `hungSeconds`. */
  stale?: boolean;
  pid?: number;
  port?: number;
  restarts: number;
  torrents: SeedTorrentStatus[];
}

export interface Seeder {
  /** Seeds exactly these images from now on (the catalog's onChange). */
  setImages(images: ImageRecord[]): void;
  status(): SeederStatus;
  /** True while the seeder process is up, reporting, and seeding this torrent (its pieces all verified). */
  isSeeding(infoHash: string): boolean;
  /** The web seed sent these pieces whole: tells the seeder process once per piece, so it does not send them again. */
  webSeedServed(infoHash: string, pieces: number[]): void;
  /** Connects the seeder to a node that just joined the swarm. */
  connectTo(infoHash: string, ip: string, port: number): void;
  close(): Promise<void>;
}

const STATS_MS = 1000;
/** A seeder whose last stats are older than this is hung as far as anyone relying on it is concerned. */
const STALE_STATS_MS = 5 * STATS_MS;
const MAX_RESTART_MS = 5 * 60_000;
/** A seeder that ran this long before dying is counted as a fresh failure, not part of a crash loop. */
const STABLE_MS = 60_000;

const toSeedImage = (r: ImageRecord): SeedImage => ({
  name: r.manifest.name,
  infoHash: r.manifest.torrent.infoHash,
  torrentFile: path.join(r.dir, r.manifest.torrent.file || IMAGE_FILES.torrent),
  dir: r.dir,
});

/** The child's entry, beside this module: seeder-child.js when built, seeder-child.ts under tsx. */
function childEntry(): { file: string; execArgv: string[] } {
  const self = fileURLToPath(import.meta.url);
  const ext = path.extname(self);
  const file = path.join(path.dirname(self), `seeder-child${ext}`);
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--inspect') && !a.startsWith('--cpu-prof'));
  if (ext === '.ts' && !execArgv.some((a) => a.includes('tsx'))) execArgv.push('--import', import.meta.resolve('tsx'));
  return { file, execArgv };
}

/**
 * webtorrent runs in a child process: a crash deep in its peer-wire code cannot take DHCP, TFTP or the API down
 * with it, piece hashing and serving use the second core instead of the server's event loop, and the seeder can be
 * killed and restarted on its own. It starts with the first image, so a server without images forks nothing.
 */
export function startSeeder(opts: SeederOptions): Seeder {
  let images: SeedImage[] = [];
  let child: ChildProcess | undefined;
  let port: number | undefined;
  let torrents: SeedTorrentStats[] = [];
  let statsAt = 0;
  let restarts = 0;
  let crashesInRow = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let closed = false;
  /** Pieces already told to the current seeder process, per torrent (a restarted process starts a new plan): status() counts them. */
  let told = new Map<string, Set<number>>();
  /**
   * Bytes earlier seeder processes uploaded, per torrent: a restarted process counts from 0, and the uploaded figure
   * (a Prometheus counter) must only go down when the server restarts.
   */
  const uploadedBefore = new Map<string, number>();
  const bankUploaded = () => {
    for (const t of torrents) uploadedBefore.set(t.infoHash, (uploadedBefore.get(t.infoHash) ?? 0) + t.uploaded);
  };

  const push = () => {
    if (child?.connected) child.send({ type: 'images', images } satisfies ToSeeder);
  };

  /** The process ended (exited, or never started): forget it and start another after the crash backoff. */
  const restartLater = (startedAt: number, fields: Record<string, unknown>, msg: string) => {
    if (closed) return;
    crashesInRow = Date.now() - startedAt > STABLE_MS ? 1 : crashesInRow + 1;
    const delay = Math.min(opts.restartSeconds * 1000 * 2 ** (crashesInRow - 1), MAX_RESTART_MS);
    opts.log.error({ ...fields, restartInMs: delay }, msg);
    restarts += 1;
    restartTimer = setTimeout(spawnChild, delay);
    restartTimer.unref();
  };

  const spawnChild = () => {
    restartTimer = undefined;
    if (closed) return;
    const { file, execArgv } = childEntry();
    const config: SeederChildConfig = { port: opts.port, announce: opts.announce, uploadSlots: opts.uploadSlots, superSeed: opts.superSeed, statsMs: STATS_MS };
    const startedAt = Date.now();
    told = new Map();
    // Its first stats come once it has loaded its images: the hang clock starts at the fork.
    statsAt = startedAt;
    let c: ChildProcess;
    try {
      c = fork(file, [JSON.stringify(config)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    } catch (err) {
      // fork throws for some errors (ENOMEM, say, often right after the seeder was OOM-killed): the server must
      // stay up, serving DHCP, TFTP and the web seed, and try again.
      restartLater(startedAt, { err: (err as Error).message }, 'seeder could not be started; nodes use peers and the web seed until it is');
      return;
    }
    child = c;
    let ended = false;
    const end = () => {
      if (child === c) {
        bankUploaded();
        child = undefined;
        port = undefined;
        torrents = [];
      }
      const first = !ended;
      ended = true;
      return first;
    };
    opts.log.info({ pid: c.pid, port: opts.port }, 'seeder started');
    c.on('message', (m: FromSeeder) => {
      if (m.type === 'stats') {
        torrents = m.torrents;
        statsAt = Date.now();
      }
      else if (m.type === 'listening') port = m.port;
      else if (m.type === 'log') opts.log[m.level]({ ...m.fields, pid: c.pid }, m.msg);
    });
    c.on('error', (err) => {
      // A process that never started (EAGAIN, EMFILE, ENOENT, ...) has no pid and emits no 'exit': without this it
      // counted as running forever and was never started again.
      if (c.pid === undefined) {
        if (end()) restartLater(startedAt, { err: err.message }, 'seeder could not be started; nodes use peers and the web seed until it is');
        return;
      }
      opts.log.error({ pid: c.pid, err: err.message }, 'seeder process error');
    });
    c.on('exit', (code, signal) => {
      if (end()) restartLater(startedAt, { pid: c.pid, code, signal }, 'seeder died; nodes fall back to peers and the web seed until it is back');
    });
    push();
  };

  // A hung process (a stopped or wedged event loop) keeps its port: nodes' connections to it hang, and nothing
  // exits to trigger the restart. Silent for hungSeconds, it is killed; the exit handler restarts it.
  const watchdog = setInterval(() => {
    const c = child;
    if (!c || closed || Date.now() - statsAt < opts.hungSeconds * 1000) return;
    opts.log.error({ pid: c.pid, silentMs: Date.now() - statsAt }, 'seeder hung (no stats): killing it');
    statsAt = Date.now();
    c.kill('SIGKILL');
  }, STATS_MS);
  watchdog.unref();

  const stale = () => child !== undefined && Date.now() - statsAt > STALE_STATS_MS;

  return {
    setImages(records) {
      images = records.map(toSeedImage);
      if (!child && !restartTimer && images.length > 0 && !closed) spawnChild();
      else push();
    },
    status() {
      const withWebSeed = torrents.map((t) => ({ ...t, uploaded: t.uploaded + (uploadedBefore.get(t.infoHash) ?? 0), webSeedPieces: told.get(t.infoHash)?.size ?? 0 }));
      const silent = stale();
      return {
        running: child !== undefined && !silent,
        ...(silent ? { stale: true } : {}),
        ...(child?.pid !== undefined ? { pid: child.pid } : {}),
        ...(port !== undefined ? { port } : {}),
        restarts,
        torrents: withWebSeed,
      };
    },
    isSeeding(infoHash) {
      if (!child || stale()) return false;
      return torrents.some((t) => t.infoHash === infoHash && t.state === 'seeding');
    },
    webSeedServed(infoHash, pieces) {
      if (!child?.connected) return;
      let known = told.get(infoHash);
      if (!known) told.set(infoHash, (known = new Set()));
      const fresh = pieces.filter((p) => !known.has(p));
      if (fresh.length === 0) return;
      for (const p of fresh) known.add(p);
      child.send({ type: 'webseed-served', infoHash, pieces: fresh } satisfies ToSeeder);
    },
    connectTo(infoHash, ip, port) {
      if (child?.connected) child.send({ type: 'connect', infoHash, ip, port } satisfies ToSeeder);
    },
    async close() {
      closed = true;
      clearInterval(watchdog);
      if (restartTimer) clearTimeout(restartTimer);
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => c.kill('SIGKILL'), 3000);
        c.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        c.kill('SIGTERM');
      });
    },
  };
}
