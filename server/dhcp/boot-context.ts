import { findNodeByMac } from '../inventory/index.js';
import type { BootContext } from '../protocol/dhcp/decision.js';
import type { InventoryService } from '../services/inventory-service.js';

/** The boot decision's view of the server: its address, its HTTP base URL and each node's UEFI loader. */
export function bootContextFor(serverIp: string, httpBaseUrl: string, inventory: InventoryService): BootContext {
  return {
    serverIp,
    httpBaseUrl,
    loaderFor(mac) {
      const node = findNodeByMac(inventory.inventory, mac);
      return node ? { uefiLoader: node.uefiLoader } : undefined;
    },
  };
}
