import type { Inventory, ResolvedNode } from '../model/inventory.js';
import type { LifecycleStatus } from '../model/lifecycle.js';
import { rolesPlayed } from '../model/k3s-role.js';
import type { ClusterNodeFacts, NodeFacts, RenderContext } from './types.js';

/**
 * The render context of one node: its own inventory entry, its group's data, ITS pillar (built by the caller from
 * that node's sources only) and the facts collected from it. The cluster list carries names, addresses, groups and
 * roles of every node, the hardware facts their last runs reported (what /etc/hosts and slurm.conf need) and their
 * lifecycle states (which K3s server a new server joins), nothing secret.
 */
export function buildRenderContext(
  inv: Inventory,
  node: ResolvedNode,
  pillar: Record<string, unknown>,
  facts: NodeFacts,
  clusterFacts: ReadonlyMap<string, ClusterNodeFacts> = new Map(),
  clusterStates: ReadonlyMap<string, Pick<LifecycleStatus, 'state' | 'stage'>> = new Map(),
): RenderContext {
  const group = inv.groups.get(node.group);
  return {
    node: {
      name: node.name,
      group: node.group,
      roles: [...node.roles],
      labels: { ...node.labels },
      ...(node.ip !== undefined ? { ip: node.ip } : {}),
      macs: [...node.macs],
      ...(node.rack !== undefined ? { rack: node.rack } : {}),
      ...(node.slot !== undefined ? { slot: node.slot } : {}),
    },
    group: { name: node.group, data: structuredClone(group?.data ?? {}) },
    pillar,
    facts,
    cluster: {
      name: inv.cluster.name,
      ...(inv.cluster.domain !== undefined ? { domain: inv.cluster.domain } : {}),
      nodes: [...inv.nodes.values()].map((n) => {
        // This node's own facts are the ones just collected; the others' are what their last run stored.
        const known = n.name === node.name ? { cpus: facts.cpus, memoryMiB: facts.memoryMiB, gpus: facts.gpus.map((g) => ({ model: g.model, memoryMiB: g.memoryMiB })) } : clusterFacts.get(n.name);
        const { state, stage } = clusterStates.get(n.name) ?? {};
        // Its K3s (or any role) runs on its current install: ready, or failed only in readiness after its states had all
        // applied (a cordon, a label). A failure in the states may be K3s never starting: not counted.
        const configured = state === 'ready' || (state === 'failed' && stage === 'readiness');
        return {
          name: n.name,
          ...(n.ip !== undefined ? { ip: n.ip } : {}),
          group: n.group,
          roles: rolesPlayed(n),
          ...(known ? { facts: known } : {}),
          ...(state ? { state } : {}),
          ...(configured ? { configured } : {}),
        };
      }),
    },
  };
}
