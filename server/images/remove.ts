import { readdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { RackseedError } from '../model/errors.js';
import type { Inventory } from '../model/inventory.js';
import type { ImageRecord } from '../model/image.js';
import { noNotice, scratchDir, sweepAndTell, type Notice } from './scratch.js';
import { removeTree } from './remove-tree.js';

/** Groups whose image this is, and nodes that override their group's image with it. */
export function imageUsers(inventory: Inventory | undefined, name: string): { groups: string[]; nodes: string[] } {
  if (!inventory) return { groups: [], nodes: [] };
  const groups = [...inventory.groups.values()].filter((g) => g.image === name).map((g) => g.name);
  const nodes = [...inventory.nodes.values()].filter((n) => n.image === name && !groups.includes(n.group)).map((n) => n.name);
  return { groups, nodes };
}

export interface RemovePlan {
  name: string;
  dir: string;
  files: Array<{ file: string; size: number }>;
  bytes: number;
  removed: boolean;
}

/**
 * Removes an image directory, or with `yes` false only says what would go. An image the inventory still points at
 * is refused: a node provisioned next would find no image. The directory is first renamed out of the catalog's
 * sight, so a server rescanning meanwhile never lists an image whose files are half deleted.
 */
export async function removeImage(o: { dataDir: string; image: ImageRecord; inventory?: Inventory; yes: boolean; onNotice?: Notice }): Promise<RemovePlan> {
  const name = o.image.manifest.name;
  const users = imageUsers(o.inventory, name);
  if (users.groups.length || users.nodes.length) {
    const who = [users.groups.length ? `group${users.groups.length > 1 ? 's' : ''} ${users.groups.join(', ')}` : '', users.nodes.length ? `node${users.nodes.length > 1 ? 's' : ''} ${users.nodes.join(', ')}` : '']
      .filter(Boolean)
      .join(' and ');
    throw new RackseedError('IMAGE_IN_USE', `image "${name}" is used by ${who} in the inventory; point them at another image first`, { name, ...users });
  }
  const files = readdirSync(o.image.dir).map((file) => ({ file, size: statSync(path.join(o.image.dir, file)).size }));
  const plan: RemovePlan = { name, dir: o.image.dir, files, bytes: files.reduce((n, f) => n + f.size, 0), removed: false };
  if (!o.yes) return plan;
  await sweepAndTell(o.dataDir, o.onNotice ?? noNotice);
  const work = scratchDir(o.dataDir, `removed-${name}`);
  renameSync(o.image.dir, path.join(work, name));
  await removeTree(work);
  return { ...plan, removed: true };
}
