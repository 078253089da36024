import type { ImageCatalog } from '../images/catalog.js';
import { torrentSources, type TorrentServer, type TorrentSources } from '../images/torrent-sources.js';
import type { Logger } from '../log.js';
import { IMAGE_FILES, type ImageRecord } from '../model/image.js';
import { RackseedError } from '../model/errors.js';
import type { ObservedStore, ServerImage, ServerRecord } from '../store/types.js';

/** How often a server stamps its row. */
export const HEARTBEAT_MS = 10_000;
/** A server missing three heartbeats in a row is taken for down and no longer handed to nodes. */
export const LIVE_MS = 3 * HEARTBEAT_MS;
/** How long a torrent request waits for the store's list of servers before it names this server alone. */
export const LIST_WAIT_MS = 1_000;

export interface ServerRegistryOptions {
  store: ObservedStore;
  images: ImageCatalog;
  /** server.name */
  name: string;
  /** http.public_url, without a trailing slash. */
  publicUrl: string;
  /** Whether this server runs the tracker (torrent.enabled with HTTP on). */
  tracker: boolean;
  log: Logger;
  heartbeatMs?: number;
}

function imagesOf(list: readonly ImageRecord[]): ServerImage[] {
  return list.map((i) => ({ name: i.manifest.name, sha256: i.manifest.artefacts.rootfs.sha256, infoHash: i.manifest.torrent.infoHash }));
}

/**
 * This server's entry among the servers sharing the store: a heartbeat row carrying its public URL and the images it
 * holds, so every server can hand its nodes a torrent naming all of them (trackers and web seeds). With one server on
 * SQLite it is a row nobody else reads, which costs one small write every ten seconds.
 */
export class ServerRegistry {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: ServerRegistryOptions) {}

  /**
   * Registers now (so the others see this server before its first node does) and then on every heartbeat. Refuses to
   * start when another live server holds this name: both would write one row, each would take the other for itself
   * (and leave it out of its torrents), and the first to stop would deregister the other.
   */
  async start(): Promise<void> {
    const other = await this.sameNameElsewhere();
    if (other) {
      throw new RackseedError(
        'CONFIG_INVALID',
        `another live server is registered as "${this.o.name}" (${other.publicUrl}, this one is ${this.o.publicUrl}): give each server sharing the store its own server.name (if that was this server before its URL changed, its row ages out within ${LIVE_MS / 1000} s)`,
        { name: this.o.name, other: other.publicUrl },
      );
    }
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.o.heartbeatMs ?? HEARTBEAT_MS);
    this.timer.unref();
    // A new or removed image changes what the others may list this server for: tell them now, not in 10 s.
    this.o.images.onChange(() => void this.beat());
  }

  /** Stops the heartbeat and removes this server's row, so nodes are no longer sent here. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.o.store.removeServer(this.o.name).catch((err: unknown) => this.o.log.warn({ err }, 'could not deregister this server'));
  }

  /**
   * Trackers and web seeds for an image's torrent: this server first, then the live servers holding the identical
   * image. Without the store (down, unreachable) the torrent still names this server: a node can always install
   * from the server it booted from.
   */
  async torrentSourcesFor(image: ImageRecord): Promise<TorrentSources> {
    const { manifest } = image;
    const self = {
      name: this.o.name,
      publicUrl: this.o.publicUrl,
      tracker: this.o.tracker,
      image: { sha256: manifest.artefacts.rootfs.sha256, infoHash: manifest.torrent.infoHash },
    };
    let others: ServerRecord[] = [];
    let timer: NodeJS.Timeout | undefined;
    try {
      // A node waits for its torrent: a store slow to answer (a partition) must not hold it up for the store's own
      // query limit, so after a second the torrent names this server only.
      const late = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`the store did not list the servers within ${LIST_WAIT_MS} ms`)), LIST_WAIT_MS);
      });
      others = await Promise.race([this.o.store.listServers(LIVE_MS), late]);
    } catch (err) {
      this.o.log.warn({ err, image: manifest.name }, 'could not list the other servers; the torrent names this server only');
    } finally {
      clearTimeout(timer);
    }
    const candidates: TorrentServer[] = others.map((s) => {
      const held = s.images.find((i) => i.name === manifest.name);
      return { name: s.name, publicUrl: s.publicUrl, tracker: s.tracker, ...(held ? { image: { sha256: held.sha256, infoHash: held.infoHash } } : {}) };
    });
    const file = encodeURIComponent(manifest.artefacts.rootfs.file || IMAGE_FILES.rootfs);
    return torrentSources(self, candidates, `${image.urlPath}/${file}`);
  }

  /** A live row with this server's name but another URL: another server uses the name. Undefined if none, or no store. */
  private async sameNameElsewhere(): Promise<ServerRecord | undefined> {
    try {
      return (await this.o.store.listServers(LIVE_MS)).find((s) => s.name === this.o.name && s.publicUrl !== this.o.publicUrl);
    } catch {
      return undefined;
    }
  }

  private async beat(): Promise<void> {
    if (this.stopped) return;
    // Two servers that started at the same moment both passed start()'s check: say so on every beat until one is renamed.
    const other = await this.sameNameElsewhere();
    if (other) this.o.log.error({ name: this.o.name, other: other.publicUrl }, 'another live server uses this server.name: give each server its own');
    try {
      await this.o.store.registerServer({ name: this.o.name, publicUrl: this.o.publicUrl, tracker: this.o.tracker, images: imagesOf(this.o.images.list()) });
    } catch (err) {
      // The next beat tries again; meanwhile the others keep listing this server until its row ages out.
      this.o.log.warn({ err }, 'server heartbeat failed');
    }
  }
}
