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
