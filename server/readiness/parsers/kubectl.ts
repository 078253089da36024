/** Pure parser for `kubectl get node NAME -o json`: the Ready condition and the labels. */

export interface KubeNodeStatus {
  name: string;
  /** 'True' | 'False' | 'Unknown', or undefined when the node reports no Ready condition yet. */
  ready?: string;
  readyReason?: string;
  readyMessage?: string;
  labels: Record<string, string>;
  unschedulable: boolean;
}

interface NodeJson {
  kind?: unknown;
  metadata?: { name?: unknown; labels?: Record<string, unknown> };
  spec?: { unschedulable?: unknown };
  status?: { conditions?: Array<{ type?: unknown; status?: unknown; reason?: unknown; message?: unknown }> };
}

/** Parses the JSON; throws a plain Error naming what is wrong when it is not a single Node object. */
export function parseKubectlNode(text: string): KubeNodeStatus {
  const doc = JSON.parse(text) as NodeJson;
  if (doc === null || typeof doc !== 'object' || doc.kind !== 'Node') throw new Error(`expected a JSON object of kind Node, got ${JSON.stringify((doc as { kind?: unknown } | null)?.kind)}`);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc.metadata?.labels ?? {})) if (typeof v === 'string') labels[k] = v;
  const ready = (doc.status?.conditions ?? []).find((c) => c.type === 'Ready');
  const out: KubeNodeStatus = { name: typeof doc.metadata?.name === 'string' ? doc.metadata.name : '', labels, unschedulable: doc.spec?.unschedulable === true };
  if (ready) {
    if (typeof ready.status === 'string') out.ready = ready.status;
    if (typeof ready.reason === 'string') out.readyReason = ready.reason;
    if (typeof ready.message === 'string') out.readyMessage = ready.message;
  }
  return out;
}
