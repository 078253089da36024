import type { Group } from '../model/inventory.js';
import { isValidGroupName } from './names.js';
import { groupSchema, type GroupInput } from './schema.js';
import type { SourceLocator } from '../util/source-locator.js';
import { parseAt } from '../util/zod-located.js';

function toGroup(name: string, g: GroupInput): Group {
  const hw = g.hardware;
  return {
    name,
    roles: g.roles,
    kernelArgs: g.kernel_args,
    ...(g.selector !== undefined ? { selector: g.selector } : {}),
    installedBoot: g.installed_boot,
    uefiLoader: g.uefi_loader,
    leaseSeconds: g.lease_seconds,
    data: g.data,
    hardware: {
      ...(hw.gpu ? { gpu: { model: hw.gpu.model, count: hw.gpu.count, memoryMiB: hw.gpu.memory_mib } } : {}),
      ...(hw.infiniband ? { infiniband: { ports: hw.infiniband.ports, rateGbps: hw.infiniband.rate_gbps } } : {}),
    },
    ...(g.description !== undefined ? { description: g.description } : {}),
    ...(g.image !== undefined ? { image: g.image } : {}),
    ...(g.disk ? { disk: { device: g.disk.device, table: g.disk.table, partitions: g.disk.partitions } } : {}),
  };
}

export function buildGroups(raw: Record<string, unknown>, where: SourceLocator): Map<string, Group> {
  const groups = new Map<string, Group>();
  for (const [name, value] of Object.entries(raw)) {
    if (!isValidGroupName(name)) {
      throw where.error('INVENTORY_INVALID', ['groups', name], `"${name}" is not a valid group name (letters, digits, ".", "_", "-")`);
    }
    groups.set(name, toGroup(name, parseAt(groupSchema, value ?? {}, ['groups', name], where, 'INVENTORY_INVALID')));
  }
  return groups;
}
