/** Node lifecycle: the states a machine moves through, and the events that move it. */

export const LIFECYCLE_STATES = [
  'discovered',
  'assigned',
  'provisioning',
  'installed',
  'configuring',
  'ready',
  'failed',
  'wiping',
  'wiped',
] as const;

export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

/** The stage the installer reports once it has its plan (images/installer/init); its detail names the image. */
export const PLAN_STAGE = 'plan';

/**
 * How a wipe erases the disks (`rackseed wipe --mode`). quick: every signature (partition tables, file systems, RAID
 * and LVM labels) and the first and last 16 MiB of every disk, discarded first where the disk supports it: nothing
 * that mounts or assembles is left, in seconds. full: every byte of every disk overwritten with zeros and read back.
 */
export const WIPE_MODES = ['quick', 'full'] as const;
export type WipeMode = (typeof WIPE_MODES)[number];

/** The stage the installer reports while it wipes, and names when a wipe fails. */
export const WIPE_STAGE = 'wipe';

/** A disk the installer wiped: its kernel name and size, and what identifies it beyond a name that changes. */
export interface WipedDisk {
  name: string;
  bytes: number;
  model?: string;
  serial?: string;
  wwid?: string;
}

/** A block device the wipe left alone, and why (removable, read-only, no device node). */
export interface SkippedDevice {
  name: string;
  why: string;
}

/** SMBIOS and other facts iPXE or the installer reports about a machine. */
export type Facts = Record<string, string | number | boolean | null>;

/**
 * Events are the only way status changes. Every one is stored with a timestamp; the status is the fold of the
 * events through the pure reducer in server/lifecycle/reducer.ts.
 */
export type LifecycleEvent =
  | { type: 'discovered'; mac: string; facts: Facts }
  | { type: 'assigned'; group: string }
  | { type: 'provision_started' }
  /** Progress inside provisioning (download, unpack, ...). Does not change the state. */
  | { type: 'stage'; stage: string; detail?: Record<string, unknown> }
  /** `image`: what the installer verified and unpacked (an installer older than this field sends none). */
  | { type: 'installed'; image?: InstalledImage }
  | { type: 'configure_started' }
  | { type: 'ready' }
  | { type: 'failed'; reason: string; stage?: string }
  /** `fromGroup`: the inventory group the request moved the node out of (reimage --group); a cancel moves it back. */
  | { type: 'reimage_requested'; fromGroup?: string }
  | { type: 'reimage_cancelled' }
  /** Erase the node's disks on its next boot from the network (`rackseed wipe`); stays until the wipe is done. */
  | { type: 'wipe_requested'; mode: WipeMode }
  | { type: 'wipe_cancelled' }
  /** The node was sent to the installer to wipe its disks. */
  | { type: 'wipe_started' }
  /** The installer erased (and checked) every disk it found. */
  | { type: 'wiped'; mode: WipeMode; disks: WipedDisk[]; skipped?: SkippedDevice[]; remote?: string }
  /**
   * The server refused a request for the node's install plan (it carries the node's host key): recorded in every
   * state, where an operator sees it, because a replayed token arrives after the install. Changes no state; an
   * installing node shows it as its stage.
   */
  | { type: 'plan_refused'; reason: string; remote?: string }
  /**
   * The node was removed from the inventory (`rackseed node remove`): what it was is over, and its record goes back to
   * being a discovered machine (kept under its MAC, with its facts and history, until store retention forgets it).
   * `entry`: where it was declared, for the history.
   */
  | { type: 'removed'; entry?: string };

export type LifecycleEventType = LifecycleEvent['type'];

/** The image on a node's disk: its name in the catalog and the sha256 of the rootfs tarball the installer verified. */
export interface InstalledImage {
  name: string;
  sha256: string;
}

/**
 * The stages of the server's work on an installed node: applying its states, then checking its readiness. A failure
 * there leaves the installed OS bootable (the next boot starts it, so the operator can look and converge again); a
 * failure in any other stage is the installer's, and the disk is not to be trusted until a reimage.
 */
export const POST_INSTALL_STAGES = ['states', 'readiness'] as const;
export type PostInstallStage = (typeof POST_INSTALL_STAGES)[number];

export const isPostInstallStage = (stage: string | undefined): boolean =>
  stage !== undefined && (POST_INSTALL_STAGES as readonly string[]).includes(stage);

/** Failed in an installer stage: the disk holds no OS to boot, configure or check until the node is reimaged. */
export const isInstallFailure = (status: Pick<LifecycleStatus, 'state' | 'stage'> | undefined): boolean =>
  status?.state === 'failed' && status.stage !== undefined && !isPostInstallStage(status.stage);

/** States in which the server works on the installed OS, the only ones a post-install failure can come from. */
export const POST_INSTALL_STATES: ReadonlySet<LifecycleState> = new Set(['installed', 'configuring', 'ready', 'failed']);

export interface LifecycleStatus {
  state: LifecycleState;
  /** Why the node failed; set only in the failed state. */
  reason?: string;
  reimageRequested: boolean;
  /**
   * The inventory group the pending reimage moved the node out of (reimage --group), kept from the first request of
   * the pending reimage so a cancel restores the group the node's installed OS was configured for.
   */
  reimageFromGroup?: string;
  /**
   * A wipe is pending (or under way: it stays set while the node is `wiping`, so a machine rebooted mid-wipe starts
   * again), with its mode. Cleared when the wipe is done or fails, or by a cancel before it starts.
   */
  wipeRequested?: WipeMode;
  /** The last provisioning stage reported, e.g. "download". */
  stage?: string;
  /**
   * The image the last completed install put on the disk, kept until the next install starts. With installed_boot
   * kernel the node boots this image's kernel, not its group's current image (whose modules the disk may not hold).
   */
  installedImage?: InstalledImage;
  facts: Facts;
}
