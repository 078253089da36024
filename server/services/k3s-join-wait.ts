/**
 * A K3s node converged before the server it joins answered fails in `k3s-join-server` with a reason that names that
 * server's host:port (states/k3s/files/macros.njk, join_wait_message: "K3s server <host:port> does not answer yet:
 * ..."); its own unit keeps trying to join by itself. The rackseed server that manages the node reads the address
 * back here, probes it, and converges the node again once it answers (convergence.ts). The wording lives in the
 * template; test/unit/roles-render.test.ts runs the template's message through this parser, so the two cannot drift.
 */

import type { Inventory, ResolvedNode } from '../model/inventory.js';
import { k3sData, rolesPlayed } from '../model/k3s-role.js';

export interface JoinTarget {
  host: string;
  port: number;
}

/** Only as the reason of that state (`states: N failed: k3s-join-server: exit 1: K3s server ...`), not any stderr. */
const WAITING = /: k3s-join-server: (?:exit \d+: )?K3s server (\S+) does not answer yet:/;

/** The server a node failed waiting for, from its `failed` reason; undefined for any other reason. Pure. */
export function k3sJoinWaitTarget(reason: string | undefined): JoinTarget | undefined {
  const address = reason === undefined ? undefined : WAITING.exec(reason)?.[1];
  return address === undefined ? undefined : parseJoinAddress(address);
}

/**
 * host:port as the template's `answers` reads it: the port after the last colon when there is one outside brackets
 * (`[fd00::1]:6443`, `10.0.3.1:6443`), else 443 (a URL without a port); brackets around an IPv6 address dropped.
 */
export function parseJoinAddress(address: string): JoinTarget | undefined {
  const hasPort = /^\[.*\]:/.test(address) || (!address.startsWith('[') && address.includes(':'));
  const hostPart = hasPort ? address.slice(0, address.lastIndexOf(':')) : address;
  const portText = hasPort ? address.slice(address.lastIndexOf(':') + 1) : '443';
  const host = hostPart.replace(/^\[/, '').replace(/\]$/, '');
  if (host === '' || !/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  return port >= 1 && port <= 65_535 ? { host, port } : undefined;
}

/** Every K3s server's name and address in the inventory: what a K3s node may wait for. Pure. */
export function k3sServerHosts(inv: Inventory): Set<string> {
  const hosts = new Set<string>();
  for (const n of inv.nodes.values()) {
    if (!rolesPlayed(n).includes('k3s-server')) continue;
    hosts.add(n.name);
    if (n.ip !== undefined) hosts.add(n.ip);
  }
  return hosts;
}

/**
 * The hosts a K3s node of this inventory may wait for: every K3s server's address and name (`servers`, computed once
 * per round by a caller that asks for many nodes), and the host of the node's own k3s.server_url: from `data`, the
 * node's pillar as its states saw it (pillar files included), by default its inventory data. The address in a failed
 * reason was written by the node; the server probes only one of these, never whatever a node put on its stderr. Pure.
 */
export function expectedJoinHosts(inv: Inventory, node: ResolvedNode, servers: ReadonlySet<string> = k3sServerHosts(inv), data: Record<string, unknown> = node.data): Set<string> {
  if (!rolesPlayed(node).some((r) => r === 'k3s-server' || r === 'k3s-agent')) return new Set();
  const hosts = new Set(servers);
  const url = k3sData(data)['server_url'];
  if (typeof url === 'string') {
    const address = url.replace(/^https?:\/\//, '').split('/')[0] ?? '';
    const host = parseJoinAddress(address)?.host;
    if (host !== undefined) hosts.add(host);
  }
  return hosts;
}
