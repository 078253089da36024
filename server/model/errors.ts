/**
 * Typed errors. Every error that leaves a subsystem carries a stable machine-readable code, so the API,
 * the CLI and tests can match on it without parsing messages.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'INVENTORY_INVALID'
  | 'INVENTORY_DUPLICATE'
  | 'INVENTORY_NOT_FOUND'
  /** The inventory loaded and is in use, but something that follows it (the store sync, DHCP reservations) failed. */
  | 'INVENTORY_APPLY_FAILED'
  /** The inventory file could not be written (a read-only disk, a full one, an immutable file). */
  | 'INVENTORY_WRITE_FAILED'
  | 'MAC_INVALID'
  | 'HOSTNAME_INVALID'
  | 'HOSTLIST_INVALID'
  | 'CSV_INVALID'
  | 'LIFECYCLE_INVALID_TRANSITION'
  | 'STORE_CONFLICT'
  | 'STORE_MIGRATION'
  | 'STORE_UNAVAILABLE'
  | 'TEMPLATE_MISSING_VALUE'
  | 'TEMPLATE_ERROR'
  | 'NODE_NOT_FOUND'
  /** The node is in the middle of something a request would cut off (an install, for `node remove` without --force). */
  | 'NODE_BUSY'
  | 'GROUP_NOT_FOUND'
  | 'UNAUTHORIZED'
  | 'BAD_REQUEST'
  | 'NOT_FOUND'
  | 'DHCP_DECODE'
  | 'DHCP_ENCODE'
  | 'IMAGE_RECIPE_INVALID'
  | 'IMAGE_EXISTS'
  | 'IMAGE_NOT_FOUND'
  | 'IMAGE_IN_USE'
  | 'IMAGE_BUILD_FAILED'
  | 'IMAGE_SOURCE_INVALID'
  | 'SLS_NOT_FOUND'
  | 'SLS_RENDER'
  | 'SLS_INVALID'
  | 'STATE_COMPILE'
  | 'STATE_REQUISITE_MISSING'
  | 'STATE_REQUISITE_CYCLE'
  | 'STATE_MODULE_UNKNOWN'
  | 'STATE_MODULE_FAILED'
  | 'STATE_TRANSPORT'
  | 'STATE_TIMEOUT'
  /** The caller gave up on a command (its signal aborted): it was killed on the node, or never started. */
  | 'STATE_CANCELLED'
  /** A command too long for one argument on the node (Linux's 128 KiB); data goes on stdin. */
  | 'STATE_COMMAND_TOO_LONG'
  /** A file operation on a node failed (permission, not a regular file, unknown owner), the connection being fine. */
  | 'STATE_FILE_IO'
  /** A state apply asked for a node whose reimage is pending (its next boot reinstalls it). */
  | 'REIMAGE_PENDING'
  | 'SSH_HOST_KEY_MISMATCH'
  | 'SSH_HOST_KEY_UNKNOWN'
  | 'BMC_CREDENTIALS'
  /** A secret file in the data directory (a token or a signing key) that holds too short a value to be safe. */
  | 'SECRET_INVALID'
  /** The virtual lab (`rackseed lab`) cannot start or stop: not root, a missing tool, a lab already running. */
  | 'LAB_FAILED'
  /** A backup could not be made (the file exists without --force, tar or the store snapshot failed). */
  | 'BACKUP_FAILED'
  /** A backup archive that is not one, is damaged, or holds an entry that could land outside the data directory. */
  | 'BACKUP_INVALID'
  /** A restore that would harm a live system: a server runs on the data directory, or state would be overwritten. */
  | 'BACKUP_REFUSED'
  /** Another live process holds the data directory: a server already runs on it, or a backup restore is writing it. */
  | 'DATA_DIR_BUSY'
  | 'INTERNAL';

export class RackseedError extends Error {
  readonly code: ErrorCode;
  /** Structured context (file, key path, line, the two conflicting entries, ...). */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RackseedError';
    this.code = code;
    this.details = details;
  }
}

export function isRackseedError(e: unknown): e is RackseedError {
  return e instanceof RackseedError;
}

/** Any thrown value as a failure to store and report: the typed error's code (else INTERNAL) and its message. */
export function describeFailure(err: unknown): { code: string; message: string } {
  return { code: isRackseedError(err) ? err.code : 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}
