/** The K3s role a node plays. */
export type K3sRole = 'k3s-server' | 'k3s-agent';

/** The data key k3s as a mapping ({} when absent or not a mapping). */
export function k3sData(data: Record<string, unknown>): Record<string, unknown> {
  const k3s = data['k3s'];
  return k3s && typeof k3s === 'object' && !Array.isArray(k3s) ? (k3s as Record<string, unknown>) : {};
}

/** The k3s role a node of the plain `k3s` role plays: data.k3s.role 'server', else agent (as states/k3s/init.sls decides). */
export function k3sRoleOf(data: Record<string, unknown>): K3sRole {
  return k3sData(data)['role'] === 'server' ? 'k3s-server' : 'k3s-agent';
}

/**
 * A node's roles with the K3s role it plays added: a node of the plain `k3s` role also carries k3s-server or
 * k3s-agent (from its inventory data k3s.role), so that other nodes' templates find K3s servers whichever role names
 * them, and a change of k3s.role counts as a role change. (A k3s.role set only in a pillar file is not seen here.)
 */
export function rolesPlayed(node: { roles: readonly string[]; data: Record<string, unknown> }): string[] {
  const roles = [...node.roles];
  if (roles.includes('k3s')) {
    const plays = k3sRoleOf(node.data);
    if (!roles.includes(plays)) roles.push(plays);
  }
  return roles;
}
