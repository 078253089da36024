import path from 'node:path';
import { expect, test } from 'vitest';
import { loadConfig } from '../../../server/config.js';
import { loadInventory } from '../../../server/inventory/index.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

test('the committed sample rackseed.yaml is valid and points at the sample inventory, which loads', () => {
  const config = loadConfig(path.join(ROOT, 'rackseed.yaml'));
  expect(config.dhcp.mode).toBe('off');
  expect(config.http.port).toBe(8080);
  expect(config.inventoryPath).toBe(path.join(ROOT, 'examples/inventory.yaml'));
  expect(loadInventory(config.inventoryPath).nodes.size).toBe(7);
});
