import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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

  it('a file gone at a reload (a checkout, a rename) keeps the previous inventory: it is not "no nodes"', async () => {
    const inventory = new InventoryService(file, createLogger('silent'));
    const seen: number[] = [];
    inventory.onChange((inv) => void seen.push(inv.nodes.size));
    rmSync(file);
    await expect(inventory.reload()).rejects.toMatchObject({ code: 'INVENTORY_NOT_FOUND', message: expect.stringContaining('kept the inventory in use (1 nodes)') });
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

describe('inventory edits on disk', () => {
  const groups = 'cluster: { name: c }\ngroups:\n  web: {}\n  db: {}\nnodes:\n  - name: web1\n    group: web\n';

  it('write through a symbolic link into its target (a git checkout) and keep the file mode', async () => {
    const checkout = path.join(dir, 'checkout');
    mkdirSync(checkout);
    const real = path.join(checkout, 'inventory.yaml');
    writeFileSync(real, groups, { mode: 0o640 });
    chmodSync(real, 0o640);
    const link = path.join(dir, 'linked.yaml');
    symlinkSync(real, link);

    const inventory = new InventoryService(link, createLogger('silent'));
    expect(await inventory.moveToGroup(['web1'], 'db', { dryRun: false })).toEqual([{ node: 'web1', from: 'web' }]);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, 'utf8')).toBe(groups.replace('    group: web\n', '    group: db\n'));
    expect(statSync(real).mode & 0o777).toBe(0o640);
    expect(readdirSync(checkout)).toEqual(['inventory.yaml']);
    expect(inventory.inventory.nodes.get('web1')?.group).toBe('db');
  });

});
