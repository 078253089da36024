import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Host key pins as OpenSSH writes them: a public key line (`ssh-ed25519 AAAA... comment`) or a known_hosts line
 * (`name,10.0.0.5 ssh-ed25519 AAAA...`, as server/services/node-identity.ts writes data/ssh/known_hosts). Pure: no
 * file access, so the SSH transport and tests share one reading of the format.
 */

export interface PublicKey {
  /** The key type as written: 'ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', ... */
  type: string;
  /** The wire-format key blob (what the server presents during key exchange). */
  blob: Buffer;
}

export interface KnownHostsEntry extends PublicKey {
  /** Host patterns (plain names/addresses, `[host]:port`, or a hashed `|1|salt|hash`). */
  hosts: string[];
  /** `@revoked` / `@cert-authority`, which never pin a host key here. */
  marker?: string;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The key type a blob names in its first field (an SSH string: uint32 length, then bytes). */
function blobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) return undefined;
  return blob.subarray(4, 4 + len).toString('latin1');
}

function decodeKey(type: string, base64: string): PublicKey {
  if (!BASE64.test(base64)) throw new Error(`the ${type} key is not base64`);
  const blob = Buffer.from(base64, 'base64');
  const inner = blobType(blob);
  // A key whose blob names another type was pasted wrong; comparing it would only ever say "mismatch".
  if (inner !== type) throw new Error(`the key says ${type} but its data is ${inner === undefined ? 'not an SSH key' : inner}`);
  return { type, blob };
}

function looksLikeKeyType(word: string): boolean {
  return /^(ssh-|ecdsa-|sk-)[a-z0-9@.-]+$/.test(word);
}

/** Parses `type base64 [comment]`; also accepts a known_hosts line and takes its key. */
export function parsePublicKey(line: string): PublicKey {
  const words = line.trim().split(/\s+/);
  const at = words.findIndex(looksLikeKeyType);
  if (at < 0 || words[at + 1] === undefined) throw new Error(`not an SSH public key line: ${JSON.stringify(line.trim().slice(0, 80))}`);
  return decodeKey(words[at]!, words[at + 1]!);
}

/** Parses one known_hosts line; undefined for blank lines and comments. */
export function parseKnownHostsLine(line: string): KnownHostsEntry | undefined {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return undefined;
  const words = text.split(/\s+/);
  const marker = words[0]!.startsWith('@') ? words.shift() : undefined;
  const [hosts, type, base64] = words;
  if (hosts === undefined || type === undefined || base64 === undefined) throw new Error(`not a known_hosts line: ${JSON.stringify(text.slice(0, 80))}`);
  return { hosts: hosts.split(','), ...decodeKey(type, base64), ...(marker ? { marker } : {}) };
}

/** Whether one host pattern names `name` (plain, `[name]:port`, or hashed). Wildcards and negation are not pins. */
function patternMatches(pattern: string, name: string, port: number): boolean {
  const written = port === 22 ? name : `[${name}]:${port}`;
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(written).digest();
    const want = Buffer.from(hash, 'base64');
    return mac.length === want.length && timingSafeEqual(mac, want);
  }
  return pattern.toLowerCase() === written.toLowerCase();
}

/**
 * The pinned key for a host from a whole known_hosts text: the first plain entry naming any of `names` (the node's
 * name, its address) on `port`. Undefined when there is none: the caller refuses, it never trusts on first use.
 */
export function findPinnedKey(knownHosts: string, names: readonly string[], port = 22): PublicKey | undefined {
  for (const line of knownHosts.split('\n')) {
    let entry: KnownHostsEntry | undefined;
    try {
      entry = parseKnownHostsLine(line);
    } catch {
      // One damaged line must not hide the pins on the others.
      continue;
    }
    if (!entry || entry.marker) continue;
    if (entry.hosts.some((p) => names.some((n) => patternMatches(p, n, port)))) return { type: entry.type, blob: entry.blob };
  }
  return undefined;
}

/** OpenSSH's fingerprint: `SHA256:` + unpadded base64 of sha256(blob), as `ssh-keygen -lf` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Constant-time equality of two key blobs. */
export function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The host-key algorithms to offer so the server presents the pinned key's type and not another of its keys. */
export function hostKeyAlgorithms(type: string): string[] {
  return type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
}
