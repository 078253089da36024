import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Dashboard sessions: a signed cookie, no server-side table, so several servers sharing one admin token accept
 * each other's sessions. The signing key is derived from the admin token (never the token itself), so rotating the
 * token ends every session.
 */

export const SESSION_COOKIE = 'rackseed_ui';
export const SESSION_SECONDS = 12 * 60 * 60;

const VERSION = 'v1';

export function sessionKey(adminToken: string): Buffer {
  return createHmac('sha256', adminToken).update('rackseed-ui-session').digest();
}

function sign(key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(payload).digest('base64url');
}

/** `v1.<expires ms>.<nonce>.<mac>` */
export function issueSession(key: Buffer, now: number = Date.now()): string {
  const payload = `${VERSION}.${now + SESSION_SECONDS * 1000}.${randomBytes(12).toString('base64url')}`;
  return `${payload}.${sign(key, payload)}`;
}

/**
 * Exactly the form issueSession writes: Node's base64url decoder ignores padding, stray characters and a last
 * character's unused bits, so a lenient check accepted many spellings of one session (and a logout, which ends one
 * spelling, left the others working).
 */
const CANONICAL = /^v1\.\d{1,16}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/;

export function sessionValid(key: Buffer, value: string | undefined, now: number = Date.now()): boolean {
  if (!value || !CANONICAL.test(value)) return false;
  const parts = value.split('.');
  const payload = parts.slice(0, 3).join('.');
  // Compared as the text issueSession wrote, not as decoded bytes.
  const presented = Buffer.from(parts[3]!, 'latin1');
  const expected = Buffer.from(sign(key, payload), 'latin1');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return false;
  const expires = Number(parts[1]);
  return Number.isSafeInteger(expires) && expires > now;
}

/**
 * Sessions ended by a logout, until they would have expired anyway: a copied cookie must not outlive the logout.
 * Kept in this server's memory (the cookie itself stays stateless): another server sharing the admin token accepts
 * it until it expires, and a restart forgets the list, as rotating the admin token does not.
 */
export class RevokedSessions {
  /** By the session's nonce: whatever else a copy changes, it is the same session. */
  private readonly until = new Map<string, number>();

  revoke(value: string | undefined, now: number = Date.now()): void {
    const [, expiresText, nonce] = value?.split('.') ?? [];
    const expires = Number(expiresText);
    if (!nonce || !Number.isSafeInteger(expires) || expires <= now) return;
    this.prune(now);
    this.until.set(nonce, expires);
  }

  has(value: string | undefined, now: number = Date.now()): boolean {
    const nonce = value?.split('.')[2];
    if (!nonce) return false;
    const expires = this.until.get(nonce);
    return expires !== undefined && expires > now;
  }

  private prune(now: number): void {
    for (const [value, expires] of this.until) if (expires <= now) this.until.delete(value);
  }
}

/** The value of one cookie from a Cookie header (no cookie-parser dependency for one cookie). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
