import type { Mac } from '../../model/mac.js';
import type { Ipv4 } from './packet.js';

/**
 * Byte helpers on plain Uint8Array (not Buffer) so the codec runs the same under any runtime and never
 * depends on Node's I/O layer.
 */

export function ipv4FromBytes(b: Uint8Array, offset = 0): Ipv4 {
  return `${b[offset] ?? 0}.${b[offset + 1] ?? 0}.${b[offset + 2] ?? 0}.${b[offset + 3] ?? 0}`;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Returns undefined for anything that is not a dotted quad with octets 0..255. */
export function parseIpv4(s: string): Uint8Array | undefined {
  const m = IPV4.exec(s);
  if (!m) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const n = Number(m[i + 1]);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

export function isZeroIpv4(s: Ipv4): boolean {
  return s === '0.0.0.0';
}

export function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

export function macFromBytes(b: Uint8Array): Mac {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push((b[i] ?? 0).toString(16).padStart(2, '0'));
  return parts.join(':') as Mac;
}

/** Option strings are octets (RFC 2132 says NVT ASCII, clients send whatever): latin1 maps each byte to one char. */
export function latin1(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return s;
}

export function fromLatin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** A NUL-terminated header string (sname, file): stops at the first zero byte. */
export function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return latin1(end < 0 ? b : b.subarray(0, end));
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function u16(n: number): Uint8Array {
  return Uint8Array.of((n >>> 8) & 0xff, n & 0xff);
}

export function u32(n: number): Uint8Array {
  return Uint8Array.of((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

export function readU16(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0);
}

export function readU32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}
