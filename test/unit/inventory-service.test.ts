import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';
import { InventoryService } from '../../server/services/inventory-service.js';

const ONE = 'cluster: { name: c }\ngroups:\n  web: {}\nnodes:\n  - { name: web1, mac: "02:00:00:00:00:01", group: web }\n';
const TWO = `${ONE}  - { name: web2, mac: "02:00:00:00:00:02", group: web }\n`;

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rackseed-inventory-service-'));
  file = path.join(dir, 'inventory.yaml');
  writeFileSync(file, ONE);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('inventory reloads', () => {
  it('a broken file keeps the previous inventory and tells no one', async () => {
    const inventory = new InventoryService(file, createLogger('silent'));
    const seen: number[] = [];
    inventory.onChange((inv) => void seen.push(inv.nodes.size));
    writeFileSync(file, `${TWO}  - { name: web3, mac: "02:00:00:00:00:03", group: web\n`);
    await expect(inventory.reload()).rejects.toMatchObject({ code: 'INVENTORY_INVALID' });
    expect(inventory.inventory.nodes.size).toBe(1);
    expect(seen).toEqual([]);
  });

  it('a listener that fails does not keep the others on the old inventory, and the error says the new one is in use', async () => {
    const inventory = new InventoryService(file, createLogger('silent'));
    const seen: string[] = [];
    inventory.onChange(() => {
      throw new Error('store unavailable');
    });
    inventory.onChange((inv) => void seen.push(`dhcp ${inv.nodes.size}`));
    inventory.onChange((inv) => void seen.push(`convergence ${inv.nodes.size}`));
    writeFileSync(file, TWO);
    await expect(inventory.reload()).rejects.toMatchObject({
      code: 'INVENTORY_APPLY_FAILED',
      message: `${file} is loaded and in use (2 nodes), but 1 of what follows it failed: store unavailable`,
    });
    expect(inventory.inventory.nodes.size).toBe(2);
    expect(seen).toEqual(['dhcp 2', 'convergence 2']);
  });
});
