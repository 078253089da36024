/**
 * A node's pillar: its group's data, then the pillar document `groups/<group>`, then the node's own data from the
 * inventory, then the document `nodes/<node>`; deep-merged, later layers winning (the node over its group).
 * Only the documents keyed by this node's group and name are read: another node's `nodes/<name>` never enters.
 * The result shares no objects with the inputs, so a render cannot leak changes into another node's pillar.
 */
export type PillarData = Record<string, unknown>;

export interface PillarInput {
  node: { name: string; group: string };
  /** Group-level data from the inventory. */
  groupData?: PillarData;
  /** Node-level data from the inventory (overrides). */
  nodeData?: PillarData;
  /** Pillar documents by key: 'groups/<group>', 'nodes/<node>'. Others are ignored. */
  documents?: Readonly<Record<string, PillarData | undefined>>;
}

/** The node as the inventory resolves it: `ownData` is its overrides.data alone (its `data` includes the group's). */
export interface PillarNode {
  name: string;
  group: string;
  ownData?: PillarData;
}

export function composePillar(input: PillarInput): PillarData;
export function composePillar(node: PillarNode, group: { data?: PillarData } | undefined, documents?: Readonly<Record<string, PillarData | undefined>>): PillarData;
export function composePillar(first: PillarInput | PillarNode, group?: { data?: PillarData }, documents?: Readonly<Record<string, PillarData | undefined>>): PillarData {
  if ('node' in first) return composeLayers(first);
  return composeLayers({
    node: { name: first.name, group: first.group },
    ...(group?.data ? { groupData: group.data } : {}),
    // Not first.data: that already holds the group's data, which would then outrank groups/<group>.yaml.
    ...(first.ownData ? { nodeData: first.ownData } : {}),
    ...(documents ? { documents } : {}),
  });
}

function composeLayers(input: PillarInput): PillarData {
  const docs = input.documents ?? {};
  const layers = [input.groupData, docs[`groups/${input.node.group}`], input.nodeData, docs[`nodes/${input.node.name}`]];
  let pillar: PillarData = {};
  for (const layer of layers) if (layer) pillar = deepMerge(pillar, layer);
  return pillar;
}

/** Mappings merge key by key; anything else (lists included) is replaced by the overriding value. */
export function deepMerge(base: PillarData, override: PillarData): PillarData {
  const out: PillarData = cloneMapping(base);
  for (const [key, value] of Object.entries(override)) {
    if (isUnsafeKey(key)) continue;
    const current = out[key];
    out[key] = isPlainMapping(current) && isPlainMapping(value) ? deepMerge(current, value) : cloneValue(value);
  }
  return out;
}

function isPlainMapping(value: unknown): value is PillarData {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isUnsafeKey(key: string): boolean {
  return key === '__proto__' || key === 'constructor' || key === 'prototype';
}

function cloneMapping(value: PillarData): PillarData {
  const out: PillarData = {};
  for (const [k, v] of Object.entries(value)) if (!isUnsafeKey(k)) out[k] = cloneValue(v);
  return out;
}

function cloneValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cloneValue);
  if (isPlainMapping(value)) return cloneMapping(value);
  return value;
}
