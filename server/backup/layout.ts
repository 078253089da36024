/**
 * What a backup of the data directory holds, and what an archive must look like to be restored. Pure: no I/O.
 *
 * The archive is a gzipped tar whose entries are paths relative to the data directory, beside one reserved
 * directory, `.rackseed-backup/`, holding the manifest and the SQLite snapshot (which goes to `store.path`, wherever
 * the configuration puts it, not to a path inside the data directory).
 */
import { z } from 'zod';

export const BACKUP_META_DIR = '.rackseed-backup';
export const MANIFEST_ENTRY = `${BACKUP_META_DIR}/manifest.json`;
export const STORE_ENTRY = `${BACKUP_META_DIR}/store.db`;
export const BACKUP_FORMAT = 'rackseed-backup';
export const BACKUP_FORMAT_VERSION = 1;

/** The file a running server keeps in its data directory (server/util/server-marker.ts); it describes a process, not state. */
export const SERVER_MARKER = 'server.pid';

/**
 * Why a path below the data directory stays out of a backup, or undefined when it goes in. Images and the installer
 * are rebuilt from their recipes and run to gigabytes, so they go in only when asked for; the image scratch space
 * (half-built trees, perhaps with the host's /proc mounted in them) and files caught mid-write never do.
 */
export function excludedFromBackup(rel: string, withImages: boolean): string | undefined {
  const parts = rel.split('/');
  if (parts[0] === '.image-work') return 'image scratch space (builds in progress or killed)';
  if (parts[0] === BACKUP_META_DIR) return 'reserved for the backup manifest';
  if (rel === SERVER_MARKER) return 'the running server\'s marker';
  if (!withImages && parts[0] === 'files' && (parts[1] === 'images' || parts[1] === 'installer')) {
    return 'images and the installer are rebuilt from their recipes (--with-images takes them)';
  }
  const base = parts.at(-1) ?? '';
  // Temporary names of NodeIdentity's keygen and known_hosts rewrite, and of replaceFileDurably: renamed away at once.
  if (/\.tmp-\d+(\.pub)?$/.test(base) || /^\..+\.\d+\.tmp$/.test(base)) return 'a temporary file being written';
  return undefined;
}

/**
 * Files a restore writes with mode 0600 whatever the archive says (directories 0700): tokens, signing keys, private
 * SSH keys, role secrets and BMC passwords, pillar data. An archive edited or made elsewhere cannot loosen them.
 */
export function isSecretPath(rel: string): boolean {
  const parts = rel.split('/');
  if (parts.length === 1) return ['admin-token', 'metrics-token', 'node-token-key', 'callback-token-key', 'secrets', 'pillar', 'ssh'].includes(rel);
  if (parts[0] === 'secrets' || parts[0] === 'pillar') return true;
  if (parts[0] === 'ssh') return parts.length === 2 && parts[1] === 'id_ed25519';
  return parts[0] === 'nodes' && parts.length === 3 && parts[2] === 'ssh_host_ed25519_key';
}

/** The permission bits a restored entry gets: the archive's, tightened for secrets, never setuid/setgid/sticky. */
export function restoredMode(rel: string, archived: number, isDirectory: boolean): number {
  if (isSecretPath(rel)) return isDirectory ? 0o700 : 0o600;
  return archived & 0o777;
}

/** One archive member as `tar --list` shows it: the name (escaped, directories ending in "/") and its type letter. */
export interface ArchiveEntry {
  name: string;
  /** The first letter of `tar -tv`'s mode column: `-` file, `d` directory, `l` symlink, `h` hard link, ... */
  type: string;
}

const TYPE_NAMES: Record<string, string> = { l: 'a symbolic link', h: 'a hard link', c: 'a character device', b: 'a block device', p: 'a FIFO', s: 'a socket' };

/**
 * Every reason the archive's entries cannot be restored as they are. A backup holds only plain files and directories
 * at relative paths without `.` or `..` components, so anything else (an absolute path, `../`, a link that could
 * point out of the data directory, a device) is refused before a byte is written, not stripped or skipped.
 */
export function archiveProblems(entries: readonly ArchiveEntry[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const { name, type } of entries) {
    const shown = JSON.stringify(name);
    // Names come decoded from tar's escape quoting (UTF-8 names are fine); a control character or a backslash is
    // left only by a name rackseed never writes (or one that is not UTF-8 and could not be decoded).
    if (/[\\\x00-\x1f\x7f]/.test(name)) {
      problems.push(`${shown}: a name with control characters or backslashes`);
      continue;
    }
    if (name.startsWith('/')) {
      problems.push(`${shown}: an absolute path`);
      continue;
    }
    const rel = type === 'd' ? name.replace(/\/$/, '') : name;
    const parts = rel.split('/');
    if (parts.includes('..')) problems.push(`${shown}: a path with ".." in it`);
    else if (parts.some((p) => p === '' || p === '.')) problems.push(`${shown}: not a plain relative path`);
    else if (type !== '-' && type !== 'd') problems.push(`${shown}: ${TYPE_NAMES[type] ?? `an entry of type "${type}"`} (a backup holds only files and directories)`);
    else if (parts[0] === BACKUP_META_DIR && rel !== BACKUP_META_DIR && rel !== MANIFEST_ENTRY && rel !== STORE_ENTRY) problems.push(`${shown}: unexpected in ${BACKUP_META_DIR}/`);
    else if (seen.has(rel)) problems.push(`${shown}: listed twice`);
    seen.add(rel);
  }
  if (problems.length === 0 && !seen.has(MANIFEST_ENTRY)) problems.push(`no ${MANIFEST_ENTRY}: not a rackseed backup`);
  return problems;
}

const manifestSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  formatVersion: z.literal(BACKUP_FORMAT_VERSION),
  rackseedVersion: z.string(),
  createdAt: z.string(),
  dataDir: z.string(),
  withImages: z.boolean(),
  store: z.union([
    z.object({ kind: z.literal('sqlite'), included: z.literal(true), schemaVersion: z.number().int(), nodes: z.number().int(), leases: z.number().int() }),
    z.object({ kind: z.literal('sqlite'), included: z.literal(false), reason: z.string() }),
    z.object({ kind: z.literal('postgres'), included: z.literal(false), reason: z.string() }),
  ]),
  files: z.number().int(),
  bytes: z.number().int(),
  contents: z.array(z.string()),
  leftOut: z.array(z.string()),
});

/** What `.rackseed-backup/manifest.json` says about the backup. */
export type BackupManifest = z.infer<typeof manifestSchema>;

/** The manifest, or the reason it is not one this rackseed reads. */
export function parseManifest(text: string): BackupManifest | { error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { error: `the manifest is not JSON (${(e as Error).message})` };
  }
  const r = manifestSchema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  return { error: `the manifest's ${issue.path.join('.') || 'top level'}: ${issue.message}` };
}
