import { createHmac, randomBytes } from 'node:crypto';
import { tokenMatches } from './admin-token.js';

export interface NodeTokenClaims {
  node: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/**
 * Per-node bearer tokens for what runs on a node during provisioning (the installer's reports). A token names
 * one node and an expiry and is signed with a key only the server holds, so it proves "this is node X" without
 * a lookup, and is worthless for any other node or after it expires. It travels on the kernel command line of a
 * boot script served without authentication, so it is short-lived by design.
 *
 * Format: v1.<node>.<expiry seconds, base 36>.<nonce>.<signature>; node names are RFC 1123 labels, so "." is
 * free to separate the fields.
 */
export class NodeTokens {
  constructor(
    private readonly key: string,
    private readonly now: () => number = Date.now,
  ) {}

  issue(node: string, lifetimeSeconds: number): string {
    const expiry = Math.ceil((this.now() + lifetimeSeconds * 1000) / 1000).toString(36);
    const body = `v1.${node}.${expiry}.${randomBytes(9).toString('base64url')}`;
    return `${body}.${this.sign(body)}`;
  }

  /** The claims of a valid, unexpired token; undefined for anything else. */
  verify(token: string): NodeTokenClaims | undefined {
    const parts = token.split('.');
    if (parts.length !== 5 || parts[0] !== 'v1') return undefined;
    const body = parts.slice(0, 4).join('.');
    if (!tokenMatches(parts[4]!, this.sign(body))) return undefined;
    const expiresAt = Number.parseInt(parts[2]!, 36) * 1000;
    if (!Number.isFinite(expiresAt) || expiresAt <= this.now()) return undefined;
    return { node: parts[1]!, expiresAt };
  }

  private sign(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}
