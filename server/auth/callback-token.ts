import { createHmac } from 'node:crypto';
import { isValidHostname } from '../model/hostname.js';
import { tokenMatches } from './admin-token.js';

/** What a callback token lets the node say. Only one for now: "I have booted my installed OS". */
export type CallbackPurpose = 'booted';

const PURPOSE = /^[a-z][a-z-]{0,31}$/;

/**
 * Callback tokens: what an INSTALLED node keeps (in /etc/rackseed/callback-token) to call the server back, e.g. from
 * its first-boot unit. Unlike the installer's node token (server/auth/node-token.ts) it has no expiry, because the
 * node may boot its OS long after the install; it is bound instead to one node AND one purpose, so it can do
 * exactly one thing for exactly one node. It is deterministic (an HMAC of purpose and node name under a key only the
 * server holds): a reinstall writes the same token, and rotating the key file revokes every token at once.
 *
 * The only purpose, `booted`, merely asks for a convergence, which reaches the node over SSH with the host key
 * pinned at provisioning: a leaked token can cause an extra convergence, never trust in another machine.
 *
 * Format: cb1.<purpose>.<node>.<signature>; node names are RFC 1123 labels and purposes have no dots.
 */
export class CallbackTokens {
  constructor(private readonly key: string) {
    if (key.length < 32) throw new Error('the callback token key must be at least 32 characters');
  }

  issue(node: string, purpose: CallbackPurpose): string {
    if (!isValidHostname(node)) throw new Error(`${JSON.stringify(node)} is not a node name`);
    const body = `cb1.${purpose}.${node}`;
    return `${body}.${this.sign(body)}`;
  }

  /** The node a genuine token for `purpose` names; undefined for anything else (another purpose included). */
  verify(token: string, purpose: CallbackPurpose): { node: string } | undefined {
    const parts = token.split('.');
    if (parts.length !== 4 || parts[0] !== 'cb1') return undefined;
    const [, tokenPurpose, node, signature] = parts as [string, string, string, string];
    if (!PURPOSE.test(tokenPurpose) || !isValidHostname(node)) return undefined;
    const body = parts.slice(0, 3).join('.');
    // The signature is checked before the purpose is compared, so both refusals take the same time.
    if (!tokenMatches(signature, this.sign(body))) return undefined;
    if (tokenPurpose !== purpose) return undefined;
    return { node };
  }

  private sign(body: string): string {
    // Domain-separated from every other HMAC rackseed makes, even if a key file were ever shared by mistake.
    return createHmac('sha256', this.key).update(`rackseed callback token\n${body}`).digest('base64url');
  }
}
