import type { BmcBootMode, BmcKind, ResolvedNode } from '../model/inventory.js';
import { runBatch } from './batch.js';
import { credentialFor, type BmcCredentials } from './credentials-file.js';
import { ipmiDriver } from './ipmi.js';
import { redfishDriver } from './redfish.js';
import type { BmcTarget, PowerAction, PowerDriver, PowerResult } from './types.js';

export interface PowerOptions {
  /** BMCs talked to at once. */
  concurrency: number;
  /** Per node, for the whole action (pxe is several calls). */
  timeoutMs: number;
  /** Protocol drivers by BMC kind; tests replace them. */
  drivers?: Partial<Record<BmcKind, PowerDriver>>;
  /** The firmware mode each node's last network boot showed, for nodes whose inventory BMC names none. */
  bootModesSeen?: ReadonlyMap<string, BmcBootMode>;
}

export const DEFAULT_POWER_OPTIONS: PowerOptions = { concurrency: 32, timeoutMs: 30_000 };

const DEFAULT_DRIVERS: Record<BmcKind, PowerDriver> = { ipmi: ipmiDriver, redfish: redfishDriver };

/** A timeout's message with the step it stopped in and the steps done before it (a pxe whose override was set). */
export function whereItStopped(error: string, steps: readonly string[]): string {
  if (steps.length === 0) return error;
  const done = steps.slice(0, -1);
  return `${error}, during ${steps.at(-1)!}${done.length > 0 ? ` (done: ${done.join('; ')})` : ''}`;
}

/**
 * One action on the BMCs of many nodes, in bounded parallel batches with a timeout each. Every node gets exactly
 * one result, reported through `onResult` as soon as it is known: nodes without a BMC or without credentials at
 * once, the others as their BMC answers (or fails to).
 */
export async function powerNodes(
  nodes: readonly ResolvedNode[],
  action: PowerAction,
  credentials: BmcCredentials,
  options: PowerOptions = DEFAULT_POWER_OPTIONS,
  onResult?: (r: PowerResult) => void,
): Promise<PowerResult[]> {
  const drivers = { ...DEFAULT_DRIVERS, ...options.drivers };
  const byNode = new Map<string, PowerResult>();
  const report = (r: PowerResult) => {
    byNode.set(r.node, r);
    onResult?.(r);
  };
  const targets: BmcTarget[] = [];
  for (const node of nodes) {
    if (!node.bmc) {
      report({ node: node.name, ok: false, error: 'no BMC in the inventory', durationMs: 0 });
      continue;
    }
    const credential = credentialFor(credentials, node.name, node.group);
    if (!credential) {
      report({ node: node.name, ok: false, error: `no BMC credentials for ${node.name} (group ${node.group}) or a default in ${credentials.file}`, durationMs: 0 });
      continue;
    }
    const bootMode = node.bmc.bootMode ?? options.bootModesSeen?.get(node.name);
    targets.push({ node: node.name, bmc: node.bmc, credential, ...(bootMode ? { bootMode } : {}) });
  }
  const steps = new Map<string, string[]>();
  const work = (t: BmcTarget, signal: AbortSignal) => {
    const taken: string[] = [];
    steps.set(t.node, taken);
    return drivers[t.bmc.kind](t, action, signal, (step) => taken.push(step));
  };
  await runBatch(targets, options, work, (t, settled) => {
    report(
      settled.ok
        ? { node: t.node, ok: true, ...(settled.value.state ? { state: settled.value.state } : {}), durationMs: settled.durationMs }
        : { node: t.node, ok: false, error: settled.timedOut ? whereItStopped(settled.error, steps.get(t.node) ?? []) : settled.error, ...(settled.timedOut ? { timedOut: true } : {}), durationMs: settled.durationMs },
    );
  });
  return nodes.map((n) => byNode.get(n.name)!);
}
