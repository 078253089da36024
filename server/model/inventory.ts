import type { Mac } from './mac.js';

/** Desired state: what the operator declared in the inventory YAML. Pure data, no behaviour. */

export interface GpuExpectation {
  /** Model name as nvidia-smi reports it, matched case-insensitively as a substring (e.g. "H100"). */
  model: string;
  count: number;
  /** Framebuffer memory of each GPU in MiB, as nvidia-smi reports memory.total. */
  memoryMiB: number;
}

export interface InfinibandExpectation {
  /** Number of ports that must be Active/LinkUp. */
  ports: number;
  /** Rate in Gb/s each port must run at (e.g. 400 for NDR). */
  rateGbps: number;
}

export interface ExpectedHardware {
  gpu?: GpuExpectation;
  infiniband?: InfinibandExpectation;
}

export interface Partition {
  /** Mount point, or "swap". */
  mount: string;
  /** Size such as "512M", "8G", or "rest" for the remainder of the disk. */
  size: string;
  /** File system type: ext4, xfs, vfat, swap. */
  fs: string;
}

export interface DiskLayout {
  /** Block device to install to, e.g. /dev/sda or /dev/nvme0n1. */
  device: string;
  table: 'gpt' | 'dos';
  partitions: Partition[];
}

/** How an installed node boots once its image is on disk. */
export type InstalledBoot = 'local' | 'kernel';

/** Which iPXE binary UEFI machines of this group chainload (snponly.efi for NICs iPXE cannot drive). */
export type UefiLoader = 'ipxe.efi' | 'snponly.efi';

export interface Group {
  name: string;
  description?: string;
  image?: string;
  roles: string[];
  kernelArgs: string[];
  disk?: DiskLayout;
  hardware: ExpectedHardware;
  /** Labels a machine must carry for this group to be selected for it; more keys = more specific. */
  selector: Record<string, string>;
  installedBoot: InstalledBoot;
  uefiLoader: UefiLoader;
  /** DHCP lease time in seconds; must outlive provisioning of this group's image. */
  leaseSeconds: number;
  /** Free-form per-group data for states and templates. */
  data: Record<string, unknown>;
}

export type BmcKind = 'ipmi' | 'redfish';

export interface Bmc {
  address: string;
  kind: BmcKind;
}

export interface NodeOverrides {
  image?: string;
  roles?: string[];
  kernelArgs?: string[];
  data?: Record<string, unknown>;
}

/** A node as declared, before its group's settings are merged in. */
export interface NodeSpec {
  name: string;
  macs: Mac[];
  ip?: string;
  /** Explicit group; when absent the group is chosen by label selection. */
  group?: string;
  bmc?: Bmc;
  labels: Record<string, string>;
  rack?: string;
  slot?: number;
  overrides: NodeOverrides;
  /** Where the entry came from, for error messages: file and line, and the range it was expanded from. */
  origin: EntryOrigin;
}

export interface EntryOrigin {
  file: string;
  line?: number;
  /** The hostlist range expression this node was expanded from, if any. */
  range?: string;
}

/** A node with its group resolved and the group's settings merged with the node's overrides. */
export interface ResolvedNode {
  name: string;
  macs: Mac[];
  ip?: string;
  group: string;
  bmc?: Bmc;
  labels: Record<string, string>;
  rack?: string;
  slot?: number;
  image?: string;
  roles: string[];
  kernelArgs: string[];
  disk?: DiskLayout;
  hardware: ExpectedHardware;
  installedBoot: InstalledBoot;
  uefiLoader: UefiLoader;
  leaseSeconds: number;
  data: Record<string, unknown>;
}

export interface ClusterInfo {
  name: string;
  domain: string;
}

export interface Inventory {
  cluster: ClusterInfo;
  groups: Map<string, Group>;
  nodes: Map<string, ResolvedNode>;
}
