/**
 * The few TFTP packets the adapter reads or writes itself, before the `tftp` package sees anything.
 * Pure functions: no sockets, no file system.
 */
import { posix } from 'node:path';

export const OP_RRQ = 1;
export const OP_WRQ = 2;
export const OP_DATA = 3;
export const OP_ACK = 4;
export const OP_ERROR = 5;
export const OP_OACK = 6;

/** RFC 1350 error codes. Code 0 is "not defined, see message". */
export const TFTP_ERR = {
  undefined: 0,
  notFound: 1,
  accessViolation: 2,
  illegalOperation: 4,
  unknownTid: 5,
} as const;

/**
 * The package maps an abort message back to a numeric code by comparing it with its own table, so these
 * strings must stay byte-identical to node_modules/tftp/lib/protocol/errors.js to get codes 1, 2, 4, 5.
 */
export const TFTP_MSG = {
  notFound: 'File not found',
  accessViolation: 'Access violation',
  illegalOperation: 'Illegal TFTP operation',
  unknownTid: 'Unknown transfer ID',
  io: 'I/O error',
  shuttingDown: 'Server shutting down',
  busy: 'Server busy, try again',
} as const;

// RFC 2348/7440 bounds, and the package's own upper blksize limit (it rejects the whole request above it).
const BLKSIZE_MIN = 8;
const BLKSIZE_MAX = 65464;
const WINDOWSIZE_MAX = 65535;
// Real boot file names are short; the package refuses requests over 512 bytes anyway.
const MAX_NAME_BYTES = 255;

export type RequestVerdict =
  | { kind: 'read'; name: string; rawName: string; mode: string; packet: Buffer }
  | { kind: 'write'; rawName: string }
  | { kind: 'traversal'; rawName: string }
  | { kind: 'protocol'; rawName: string; why: string; silent: boolean };

export function errorPacket(code: number, message: string): Buffer {
  const msg = Buffer.from(message.replace(/[^\x20-\x7e]/g, '?'), 'latin1');
  const out = Buffer.alloc(msg.length + 5);
  out.writeUInt16BE(OP_ERROR, 0);
  out.writeUInt16BE(code, 2);
  msg.copy(out, 4);
  return out;
}

function readZString(buf: Buffer, offset: number): { value: string; next: number } | null {
  const end = buf.indexOf(0, offset);
  if (end < 0) return null;
  return { value: buf.toString('latin1', offset, end), next: end + 1 };
}

/**
 * Lexical part of the root check. PXE ROMs written for Windows servers send backslashes, so they count as
 * separators; a name that is absolute or climbs above the root after normalising is refused here. The
 * real-path check (symlinks) happens later, against the file system.
 */
export function normaliseRequestName(raw: string): { ok: true; name: string } | { ok: false } {
  const slashed = raw.replace(/\\/g, '/');
  if (slashed.startsWith('/')) return { ok: false };
  const norm = posix.normalize(slashed);
  if (norm === '..' || norm.startsWith('../') || posix.isAbsolute(norm)) return { ok: false };
  return { ok: true, name: norm };
}

function clampOption(key: string, value: string): string | null {
  if (!/^[0-9]{1,10}$/.test(value)) return null;
  const n = Number(value);
  switch (key) {
    case 'blksize':
      if (n < BLKSIZE_MIN) return null;
      return String(Math.min(n, BLKSIZE_MAX));
    case 'windowsize':
      if (n < 1) return null;
      return String(Math.min(n, WINDOWSIZE_MAX));
    case 'tsize':
      // A reader sends 0 and gets the size back; any other value from a reader is meaningless.
      return '0';
    case 'rollover':
      return n === 0 || n === 1 ? String(n) : null;
    default:
      return null;
  }
}

/**
 * Classify one datagram that reached the listening port, and for a valid read request rebuild it in the
 * form the package accepts: invalid or out-of-range options are dropped or clamped (RFC 2347 lets a server
 * ignore options), because the package would otherwise refuse the whole transfer for, say, blksize 65535.
 */
export function classifyRequest(msg: Buffer): RequestVerdict {
  if (msg.length < 4) return { kind: 'protocol', rawName: '', why: 'short datagram', silent: true };
  const op = msg.readUInt16BE(0);
  // Never answer an ERROR with an ERROR: two servers could bounce them forever.
  if (op === OP_ERROR) return { kind: 'protocol', rawName: '', why: 'stray ERROR packet', silent: true };
  if (op !== OP_RRQ && op !== OP_WRQ) return { kind: 'protocol', rawName: '', why: `opcode ${op} on the listening port`, silent: false };

  const file = readZString(msg, 2);
  if (!file) return { kind: 'protocol', rawName: '', why: 'unterminated file name', silent: false };
  const rawName = file.value;
  if (op === OP_WRQ) return { kind: 'write', rawName };

  const mode = readZString(msg, file.next);
  if (!mode) return { kind: 'protocol', rawName, why: 'unterminated mode', silent: false };
  const modeLc = mode.value.toLowerCase();
  if (modeLc !== 'octet' && modeLc !== 'netascii') return { kind: 'protocol', rawName, why: `mode ${JSON.stringify(mode.value)}`, silent: false };

  if (rawName.length === 0) return { kind: 'protocol', rawName, why: 'empty file name', silent: false };
  if (Buffer.byteLength(rawName, 'latin1') > MAX_NAME_BYTES) return { kind: 'protocol', rawName, why: 'file name too long', silent: false };
  // Control characters and bytes >= 0x80 never name a boot file; the package also refuses the latter.
  if (/[^\x20-\x7e]/.test(rawName)) return { kind: 'protocol', rawName, why: 'non-printable file name', silent: false };

  const norm = normaliseRequestName(rawName);
  if (!norm.ok) return { kind: 'traversal', rawName };
  if (norm.name === '.') return { kind: 'protocol', rawName, why: 'the root itself', silent: false };

  const options: Array<[string, string]> = [];
  const seen = new Set<string>();
  let at = mode.next;
  while (at < msg.length) {
    const key = readZString(msg, at);
    if (!key) break;
    const value = readZString(msg, key.next);
    if (!value) break;
    at = value.next;
    const k = key.value.toLowerCase();
    if (seen.has(k)) continue;
    seen.add(k);
    const v = clampOption(k, value.value);
    if (v !== null) options.push([k, v]);
  }

  const parts: Buffer[] = [Buffer.from([0, OP_RRQ]), Buffer.from(`${norm.name}\0${modeLc}\0`, 'latin1')];
  for (const [k, v] of options) parts.push(Buffer.from(`${k}\0${v}\0`, 'latin1'));
  return { kind: 'read', name: norm.name, rawName, mode: modeLc, packet: Buffer.concat(parts) };
}
