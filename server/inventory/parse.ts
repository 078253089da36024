import path from 'node:path';
import { RackseedError } from '../model/errors.js';
import type { Inventory, ResolvedNode } from '../model/inventory.js';
import { checkDuplicates } from './duplicates.js';
import { buildSpecs, describeEntry, type CsvReader, type LocatedSpec } from './entries.js';
import { buildGroups } from './groups.js';
import { isDnsName } from './names.js';
import { restoreTextScalars } from './scalars.js';
import { inventorySchema } from './schema.js';
import { resolveNode, selectGroup } from './select.js';
import { parseYamlDocument, yamlToJs } from '../util/yaml-document.js';
import { parseAt } from '../util/zod-located.js';

/** For callers that know the inventory has no csv: keys; one that does gets a clear error. */
export const noCsvReader: CsvReader = (rel) => {
  throw new Error(`no CSV reader was given, so "${rel}" cannot be read`);
};

/** Where a csv: value points, as messages should show it: next to the inventory file. */
export function csvPathFor(file: string, rel: string): string {
  return path.isAbsolute(rel) ? rel : path.join(path.dirname(file), rel);
}

export interface ParsedInventory {
  inventory: Inventory;
  /** Every node as declared, with its origin; edits use it to tell explicit entries from range members. */
  entries: LocatedSpec[];
}

/** Parses and validates inventory YAML; `file` is only used in messages. Throws the first error found. */
export function parseInventoryDetailed(text: string, file: string, readCsv: CsvReader = noCsvReader): ParsedInventory {
  const { doc, where } = parseYamlDocument(text, file, 'INVENTORY_INVALID');
  if (doc.contents === null) throw where.error('INVENTORY_INVALID', [], 'the file is empty (expected cluster:, groups: and nodes:)');
  restoreTextScalars(doc, where);

  const top = parseAt(inventorySchema, yamlToJs(doc, file, 'INVENTORY_INVALID'), [], where, 'INVENTORY_INVALID');
  if (!isDnsName(top.cluster.domain)) {
    throw where.error('INVENTORY_INVALID', ['cluster', 'domain'], `"${top.cluster.domain}" is not a DNS domain (expected e.g. cluster.local)`);
  }
  const groups = buildGroups(top.groups ?? {}, where);
  const entries = buildSpecs(top.nodes ?? [], { where, groups, readCsv, csvName: (rel) => csvPathFor(file, rel) });
  checkDuplicates(entries);

  const nodes = new Map<string, ResolvedNode>();
  for (const entry of entries) {
    const { spec } = entry;
    const group = spec.group !== undefined ? groups.get(spec.group) : selectGroup(spec.labels, groups.values());
    if (!group) {
      const labels = Object.entries(spec.labels).map(([k, v]) => `${k}=${v}`).join(', ') || 'none';
      throw new RackseedError(
        'INVENTORY_INVALID',
        `${describeEntry(entry)}: no group: given and no group's selector matches its labels (${labels})`,
        { file, line: spec.origin.line, node: spec.name },
      );
    }
    const node = resolveNode(spec, group);
    // Each group of Slurm compute nodes is a partition named after it, and Slurm reads PartitionName=DEFAULT (any
    // case) as defaults for the partitions after it: the group's nodes would be in no partition at all.
    if (group.name.toLowerCase() === 'default' && node.roles.includes('slurm-compute')) {
      throw where.error('INVENTORY_INVALID', ['groups', group.name], `group "${group.name}" holds slurm-compute nodes (${node.name}), and Slurm reserves the partition name DEFAULT for default values: rename the group`);
    }
    nodes.set(spec.name, node);
  }
  return { inventory: { cluster: top.cluster, groups, nodes }, entries };
}

export function parseInventory(text: string, file: string, readCsv: CsvReader = noCsvReader): Inventory {
  return parseInventoryDetailed(text, file, readCsv).inventory;
}
