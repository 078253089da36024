import type { Inventory, ResolvedNode } from '../model/inventory.js';
import type { NodeFacts } from '../state/types.js';
import type { CheckContext } from './types.js';

/**
 * PURE: what a node's checks compare against, from the inventory (desired state) and the node's facts. `data` is
 * the node's pillar when the caller composed it (pillar files included), else its inventory data.
 */
export function buildCheckContext(inv: Inventory, node: ResolvedNode, facts: NodeFacts, data: Record<string, unknown> = node.data, options: { slurmDrainUnready?: boolean } = {}): CheckContext {
  return {
    ...(options.slurmDrainUnready ? { slurmDrainUnready: true } : {}),
    node: node.name,
    group: node.group,
    roles: node.roles,
    hardware: node.hardware,
    data,
    labels: node.labels,
    facts,
    cluster: {
      name: inv.cluster.name,
      ...(inv.cluster.domain ? { domain: inv.cluster.domain } : {}),
      nodes: [...inv.nodes.values()].map((n) => (n.ip ? { name: n.name, ip: n.ip } : { name: n.name })),
    },
  };
}
