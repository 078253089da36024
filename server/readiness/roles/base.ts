import type { CheckSpec, CheckContext, Evidence } from '../types.js';
import { commandFailed, failed, listSome, passed } from './evidence.js';

/**
 * base: the node answers over SSH under its own name and resolves every cluster node through /etc/hosts. Time
 * sync is left out on purpose: timedatectl needs systemd and chrony a running daemon, neither of which a chroot
 * test target has, and a check that cannot be verified in tests would be a check that lies.
 */

const ROLE = 'base';

/** Evidence that the connection itself worked (or why it did not): the service adds it, no command needed. */
export function sshEvidence(error?: string): Evidence {
  return error === undefined
    ? passed(ROLE, 'base.ssh', 'reachable over SSH', 'connected')
    : failed(ROLE, 'base.ssh', 'reachable over SSH', 'unreachable', error);
}

/** The node's pillar files could not be used, so checks that read them expect the inventory's data only. */
export function pillarEvidence(failure: { code: string; message: string }): Evidence {
  return failed(ROLE, 'base.pillar', 'pillar files readable', failure.code, failure.message);
}

/** The host name matches when it is the node name or the node name qualified by a domain. */
export function hostnameMatches(seen: string, node: string): boolean {
  const s = seen.trim().toLowerCase();
  const n = node.toLowerCase();
  return s === n || s.startsWith(`${n}.`);
}

const hostname: CheckSpec = {
  id: 'base.hostname',
  role: ROLE,
  command: () => 'uname -n',
  evaluate(output, ctx) {
    if (output.code !== 0) return [commandFailed(ROLE, 'base.hostname', ctx.node, 'uname -n', output)];
    const seen = output.stdout.trim();
    return [
      hostnameMatches(seen, ctx.node)
        ? passed(ROLE, 'base.hostname', ctx.node, seen)
        : failed(ROLE, 'base.hostname', ctx.node, seen || '(empty)', `the host name is "${seen}", not the node name "${ctx.node}"`),
    ];
  },
};

/** /etc/hosts as address -> names (lower case), comments dropped. */
export function parseHostsFile(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const raw of text.split('\n')) {
    const [addr, ...names] = raw.replace(/#.*/, '').trim().split(/\s+/);
    if (!addr || names.length === 0) continue;
    const set = out.get(addr) ?? new Set<string>();
    for (const n of names) set.add(n.toLowerCase());
    out.set(addr, set);
  }
  return out;
}

export function evaluateHosts(text: string, ctx: CheckContext): Evidence {
  const hosts = parseHostsFile(text);
  const withIp = ctx.cluster.nodes.filter((n): n is { name: string; ip: string } => n.ip !== undefined);
  const missing = withIp.filter((n) => !hosts.get(n.ip)?.has(n.name.toLowerCase()));
  const expected = `${withIp.length} cluster node(s) with their address`;
  const seen = `${withIp.length - missing.length} of ${withIp.length} present`;
  return missing.length === 0
    ? passed(ROLE, 'base.hosts', expected, seen)
    : failed(ROLE, 'base.hosts', expected, seen, `/etc/hosts lacks ${listSome(missing.map((n) => `${n.ip} ${n.name}`))}`);
}

const hostsFile: CheckSpec = {
  id: 'base.hosts',
  role: ROLE,
  command: () => 'cat /etc/hosts',
  evaluate(output, ctx) {
    if (output.code !== 0) return [commandFailed(ROLE, 'base.hosts', 'every cluster node', 'reading /etc/hosts', output)];
    return [evaluateHosts(output.stdout, ctx)];
  },
};

export const BASE_CHECKS: readonly CheckSpec[] = [hostname, hostsFile];
