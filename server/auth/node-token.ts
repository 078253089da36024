import { createHmac, randomBytes } from 'node:crypto';
import { findNodeByMac } from '../inventory/select.js';
import type { Inventory } from '../model/inventory.js';
import { parseMac, type Mac } from '../model/mac.js';
import { tokenMatches } from './admin-token.js';

export interface NodeTokenClaims {
  node: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  /** The MAC the machine netbooted with when the token was issued; absent in a v1 token (servers before v2). */
  mac?: Mac;
  /** Unique per token: what a single-use step (the plan fetch) spends. */
  nonce: string;
}

/**
 * Per-node bearer tokens for what runs on a node during provisioning (the installer's reports). A token names
 * one node, the machine (MAC) it was issued to and an expiry, and is signed with a key only the server holds, so it
 * proves "this is node X, on machine M" without a lookup, and is worthless for any other node or after it expires.
 * It travels on the kernel command line of a boot script served without authentication, so it is short-lived by
 * design.
 *
 * The MAC ties a token to the machine as well as the name: once the inventory no longer sends that machine to that
 * node (`node remove`, a NIC swapped in its entry), the token is refused (stillNamesMachine), also when the name
 * comes back for another machine within the token's lifetime. No table of tokens is needed.
 *
 * Format: v2.<node>.<MAC, 12 hex digits>.<expiry seconds, base 36>.<nonce>.<signature>; node names are RFC 1123
 * labels, so "." is free to separate the fields. v1.<node>.<expiry>.<nonce>.<signature> (no MAC) is what servers
 * before v2 issued: still accepted, so an install under way across an upgrade finishes; none is valid once
 * provisioning.token_seconds have passed since the upgrade.
 */
export class NodeTokens {
  constructor(
    private readonly key: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** A token for the machine with `mac` that the inventory sends to `node`. */
  issue(node: string, mac: string, lifetimeSeconds: number): string {
    const canonical = parseMac(mac);
    if (!canonical) throw new Error(`${JSON.stringify(mac)} is not a MAC address`);
    const expiry = Math.ceil((this.now() + lifetimeSeconds * 1000) / 1000).toString(36);
    const body = `v2.${node}.${canonical.replaceAll(':', '')}.${expiry}.${randomBytes(9).toString('base64url')}`;
    return `${body}.${this.sign(body)}`;
  }

  /** The claims of a valid, unexpired token; undefined for anything else. */
  verify(token: string): NodeTokenClaims | undefined {
    const parts = token.split('.');
    const fields = parts[0] === 'v2' ? 6 : parts[0] === 'v1' ? 5 : 0;
    if (fields === 0 || parts.length !== fields) return undefined;
    const body = parts.slice(0, fields - 1).join('.');
    if (!tokenMatches(parts[fields - 1]!, this.sign(body))) return undefined;
    const [node, ...rest] = parts.slice(1, fields - 1) as [string, ...string[]];
    const [macHex, expiry, nonce] = fields === 6 ? (rest as [string, string, string]) : [undefined, ...(rest as [string, string])];
    const mac = macHex === undefined ? undefined : parseMac(macHex);
    if (macHex !== undefined && mac === undefined) return undefined;
    const expiresAt = Number.parseInt(expiry, 36) * 1000;
    if (!Number.isFinite(expiresAt) || expiresAt <= this.now()) return undefined;
    return { node, expiresAt, ...(mac ? { mac } : {}), nonce };
  }

  private sign(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}

/**
 * Whether the inventory still sends the machine a token was issued to to the node it names. False once the node was
 * removed, or its entry no longer lists that MAC (another machine under the name): what the old machine's installer
 * still holds speaks for nothing. A v1 token carries no MAC and is taken on its name alone (see NodeTokens).
 */
export function stillNamesMachine(claims: NodeTokenClaims, inv: Inventory): boolean {
  if (claims.mac === undefined) return true;
  return findNodeByMac(inv, claims.mac)?.name === claims.node;
}
