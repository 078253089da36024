import type { Facts } from '../model/lifecycle.js';
import type { ClusterNodeFacts, NodeFacts } from './types.js';

/**
 * The hardware facts every node's templates may read about every other node (slurm.conf needs each compute node's
 * CPUs, memory and GPUs). They are kept in the store's flat per-node facts under these keys, written at each state
 * run, so a run on one node sees what the last run on another collected.
 */
const KEY_CPUS = 'state.cpus';
const KEY_MEMORY = 'state.memory_mib';
const KEY_GPUS = 'state.gpus';

export function clusterFactsToStore(facts: NodeFacts): Facts {
  return {
    [KEY_CPUS]: facts.cpus,
    [KEY_MEMORY]: facts.memoryMiB,
    [KEY_GPUS]: JSON.stringify(facts.gpus.map((g) => ({ model: g.model, memoryMiB: g.memoryMiB }))),
  };
}

export function clusterFactsFromStore(facts: Facts | undefined): ClusterNodeFacts | undefined {
  const cpus = facts?.[KEY_CPUS];
  const memoryMiB = facts?.[KEY_MEMORY];
  const gpusText = facts?.[KEY_GPUS];
  if (typeof cpus !== 'number' || typeof memoryMiB !== 'number' || typeof gpusText !== 'string') return undefined;
  let gpus: ClusterNodeFacts['gpus'];
  try {
    const parsed: unknown = JSON.parse(gpusText);
    if (!Array.isArray(parsed)) return undefined;
    gpus = parsed.filter(
      (g): g is { model: string; memoryMiB: number } => typeof g === 'object' && g !== null && typeof g.model === 'string' && typeof g.memoryMiB === 'number',
    );
  } catch {
    return undefined;
  }
  return { cpus, memoryMiB, gpus };
}
