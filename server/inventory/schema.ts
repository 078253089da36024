import { z } from 'zod';
import { DEFAULT_UEFI_LOADER, INSTALLER_FILESYSTEMS } from '../model/inventory.js';
import { strict } from '../util/strict-object.js';
import { diskLayoutProblems, GRUB_KERNEL_ARG, GRUB_KERNEL_ARG_CHARS } from '../model/disk-rules.js';

const text = z.string().min(1, 'must not be empty');
const textList = z.array(text);
const labels = z.record(z.string(), z.string());
const freeForm = z.record(z.string(), z.unknown());
const count = z.number().int('must be a whole number').positive('must be greater than 0');

const partition = strict({
  mount: z.string(),
  size: z.string(),
  fs: z.enum(INSTALLER_FILESYSTEMS, { error: () => `the installer makes ${INSTALLER_FILESYSTEMS.join(', ')} file systems` }),
});

const disk = strict({
  device: z.string(),
  table: z.enum(['gpt', 'dos']).default('gpt'),
  partitions: z.array(partition).min(1, 'at least one partition is needed'),
}).superRefine((d, ctx) => {
  // The installer's own rules (server/model/disk-rules.ts), so a layout it cannot make fails here, not on every node.
  for (const problem of diskLayoutProblems(d)) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
});

const hardware = strict({
  gpu: strict({ model: text, count, memory_mib: count }).optional(),
  infiniband: strict({ ports: count, rate_gbps: z.number().positive('must be greater than 0') }).optional(),
});

/**
 * Kernel arguments go as they are into the iPXE scripts (the installer's command line, and with installed_boot: kernel
 * every boot of the installed OS) and, with installed_boot: local, into GRUB's configuration. Neither has a quoting
 * syntax, so one character set serves both; checked at load, a bad argument never becomes a node that cannot boot.
 */
function checkKernelArgs(args: readonly string[] | undefined, ctx: z.RefinementCtx): void {
  args?.forEach((arg, i) => {
    if (!GRUB_KERNEL_ARG.test(arg)) {
      ctx.addIssue({ code: 'custom', path: ['kernel_args', i], message: `a kernel argument is written into iPXE scripts and GRUB's configuration as it is: ${GRUB_KERNEL_ARG_CHARS} only, at most 256 characters` });
    }
  });
}

export const groupSchema = strict({
  description: z.string().optional(),
  image: text.optional(),
  roles: textList.default([]),
  kernel_args: textList.default([]),
  installed_boot: z.enum(['local', 'kernel']).default('local'),
  uefi_loader: z.enum(['ipxe.efi', 'snponly.efi']).default(DEFAULT_UEFI_LOADER),
  lease_seconds: z
    .number()
    .int('must be a whole number of seconds')
    .min(3600, 'must be at least 3600 seconds: a lease must outlive provisioning')
    .default(86400),
  selector: labels.optional(),
  hardware: hardware.default({}),
  disk: disk.optional(),
  data: freeForm.default({}),
}).superRefine((g, ctx) => checkKernelArgs(g.kernel_args, ctx));

const bmc = strict({ address: text, kind: z.enum(['ipmi', 'redfish']).default('ipmi'), boot_mode: z.enum(['uefi', 'legacy']).optional() });

const overrides = strict({
  image: text.optional(),
  roles: textList.optional(),
  kernel_args: textList.optional(),
  data: freeForm.optional(),
}).superRefine((o, ctx) => checkKernelArgs(o.kernel_args, ctx));

/** Keys shared by single-node and range entries. */
const entryShape = {
  ip: text.optional(),
  group: text.optional(),
  bmc: bmc.optional(),
  labels: labels.default({}),
  rack: text.optional(),
  slot: z.number().int('must be a whole number').nonnegative('must not be negative').optional(),
  overrides: overrides.default({}),
};

export const nodeEntrySchema = strict({
  name: text,
  mac: text.optional(),
  macs: textList.optional(),
  ...entryShape,
});

export const rangeEntrySchema = strict({
  range: text,
  /** Delivery sheet with the MACs of the range's nodes, relative to the inventory file. */
  csv: text.optional(),
  ...entryShape,
});

export const inventorySchema = strict({
  cluster: strict({ name: text, domain: text.default('cluster.local') }),
  // `groups:` or `nodes:` with nothing under them is null in YAML; treat it as empty.
  groups: z.record(z.string(), z.unknown()).nullish(),
  nodes: z.array(z.unknown()).nullish(),
});

export type GroupInput = z.output<typeof groupSchema>;
export type NodeEntryInput = z.output<typeof nodeEntrySchema>;
export type RangeEntryInput = z.output<typeof rangeEntrySchema>;
export type InventoryInput = z.output<typeof inventorySchema>;
