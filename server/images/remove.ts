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

/** Where an image is on disk, as the store knows it: node name and the image its last install put there. */
export interface InstalledOn {
  node: string;
  image: string;
}

/**
 * Inventory nodes that boot this image's kernel from the server on every boot (installed_boot: kernel) because it is
 * the image on their disk: without it they cannot start their OS.
 */
export function kernelBootedFrom(inventory: Inventory | undefined, installed: readonly InstalledOn[], name: string): string[] {
  if (!inventory) return [];
  return installed
    .filter((i) => i.image === name)
    .map((i) => inventory.nodes.get(i.node))
    .filter((n) => n !== undefined && inventory.groups.get(n.group)?.installedBoot === 'kernel')
    .map((n) => n!.name)
    .sort();
}

const plural = (word: string, list: readonly string[]) => `${word}${list.length > 1 ? 's' : ''} ${list.join(', ')}`;

/**
 * Removes an image directory, or with `yes` false only says what would go. An image the inventory still points at
 * is refused: a node provisioned next would find no image. So is one that installed_boot kernel nodes run (given as
 * `installed`, from the store): they boot its kernel over the network. The directory is first renamed out of the
 * catalog's sight, so a server rescanning meanwhile never lists an image whose files are half deleted.
 */
export async function removeImage(o: {
  dataDir: string;
  image: ImageRecord;
  inventory?: Inventory;
  installed?: readonly InstalledOn[];
  /** Nodes installing now and the image their plan named (from the store). */
  installing?: readonly InstalledOn[];
  yes: boolean;
  onNotice?: Notice;
}): Promise<RemovePlan> {
  const name = o.image.manifest.name;
  const users = imageUsers(o.inventory, name);
  if (users.groups.length || users.nodes.length) {
    const who = [users.groups.length ? plural('group', users.groups) : '', users.nodes.length ? plural('node', users.nodes) : ''].filter(Boolean).join(' and ');
    throw new RackseedError('IMAGE_IN_USE', `image "${name}" is used by ${who} in the inventory; point them at another image first`, { name, ...users });
  }
  const booting = kernelBootedFrom(o.inventory, o.installed ?? [], name);
  if (booting.length) {
    throw new RackseedError('IMAGE_IN_USE', `image "${name}" is on the disk of ${plural('node', booting)}, which boot its kernel from this server (installed_boot: kernel); reimage them into another image first`, { name, booting });
  }
  const installing = (o.installing ?? []).filter((i) => i.image === name).map((i) => i.node).sort();
  if (installing.length) {
    throw new RackseedError('IMAGE_IN_USE', `image "${name}" is being installed on ${plural('node', installing)}: removing it would fail their download; wait until they are installed`, { name, installing });
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
