import type { BmcBootMode } from '../model/inventory.js';
import type { Facts } from '../model/lifecycle.js';

/**
 * The firmware mode a machine's last network boot showed: iPXE's `${platform}` (sent with every boot-script request
 * and kept in the node's facts) is `efi` under UEFI firmware and `pcbios` under a legacy BIOS. Pure.
 */
export function bootModeFromFacts(facts: Facts | undefined): BmcBootMode | undefined {
  const platform = facts?.platform;
  if (platform === 'efi') return 'uefi';
  if (platform === 'pcbios') return 'legacy';
  return undefined;
}
