import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describeFailure, RackseedError } from '../model/errors.js';
import type { Inventory, ResolvedNode } from '../model/inventory.js';
import { composePillar } from '../state/pillar.js';
import { parseSecretYaml } from '../util/secret-yaml.js';

/**
 * Reads the pillar files that concern ONE node: its group's and its own. Other nodes' files are never opened, so a
 * node's render context cannot contain another node's secrets even by mistake in a template.
 *
 *   <pillarDir>/groups/<group>.yaml
 *   <pillarDir>/nodes/<node>.yaml
 */
export function loadPillarDocuments(pillarDir: string, node: ResolvedNode): Record<string, Record<string, unknown>> {
  const docs: Record<string, Record<string, unknown>> = {};
  for (const key of [`groups/${node.group}`, `nodes/${node.name}`]) {
    const file = path.join(pillarDir, `${key}.yaml`);
    if (!existsSync(file)) continue;
    if ((statSync(file).mode & 0o077) !== 0) {
      throw new RackseedError('CONFIG_INVALID', `${file}: pillar files hold secrets and must not be readable by group or others (chmod 600)`, { file });
    }
    const value = parseSecretYaml(readFileSync(file, 'utf8'), file, 'CONFIG_INVALID');
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) throw new RackseedError('CONFIG_INVALID', `${file}: a pillar file must be a mapping of keys to values`, { file });
    docs[key] = value as Record<string, unknown>;
  }
  return docs;
}

/**
 * The data a node's readiness checks expect (a pinned driver, k3s labels and role): its pillar without role secrets,
 * so that a value set in a pillar file is what readiness verifies, as it is what the states installed.
 */
export function expectationData(inv: Inventory, node: ResolvedNode, pillarDir: string | undefined): Record<string, unknown> {
  return composePillar(node, inv.groups.get(node.group), pillarDir === undefined ? {} : loadPillarDocuments(pillarDir, node));
}

/**
 * expectationData for readiness and audit, which must go on when a pillar file is unusable: the inventory's data
 * then, and why (an unreadable pillar file also fails the node's state runs; here it fails a check, not the run).
 */
export function expectationDataOrFailure(
  inv: Inventory,
  node: ResolvedNode,
  pillarDir: string | undefined,
): { data: Record<string, unknown>; failure?: { code: string; message: string } } {
  try {
    return { data: expectationData(inv, node, pillarDir) };
  } catch (err) {
    return { data: node.data, failure: describeFailure(err) };
  }
}
