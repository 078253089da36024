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

/** File systems the installer can make (images/installer/lib/disk.sh); the inventory refuses any other. */
export const INSTALLER_FILESYSTEMS = ['ext4', 'vfat', 'swap'] as const;

export interface Partition {
  /** Mount point, or "swap". */
  mount: string;
  /** Size such as "512M", "8G", or "rest" for the remainder of the disk. */
  size: string;
  /** File system type: one of INSTALLER_FILESYSTEMS. */
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

/** Which iPXE binary UEFI machines of this group chainload. */
export type UefiLoader = 'ipxe.efi' | 'snponly.efi';

/**
 * What an x86-64 UEFI machine is given unless its group says otherwise (unknown machines too). snponly.efi drives
 * the NIC through the firmware's own network driver, which every UEFI machine that PXE boots has, and it hands
 * control back to the firmware when a script exits, so the firmware goes on to its next boot entry (local boot,
 * unknown machines). Debian's ipxe.efi, with its own drivers, leaves OVMF hanging after it exits
 * (test/e2e/local-boot.test.ts found it): it is for firmware whose network driver is broken, at that cost.
 */
export const DEFAULT_UEFI_LOADER: UefiLoader = 'snponly.efi';

export interface Group {
  name: string;
  description?: string;
  image?: string;
  roles: string[];
  kernelArgs: string[];
  disk?: DiskLayout;
  hardware: ExpectedHardware;
  /**
   * Labels a node without `group:` must carry for this group to be selected for it; more keys = more specific, and
   * `{}` takes every such node. Absent: the group takes only nodes that name it.
   */
  selector?: Record<string, string>;
  installedBoot: InstalledBoot;
  uefiLoader: UefiLoader;
  /** DHCP lease time in seconds; must outlive provisioning of this group's image. */
  leaseSeconds: number;
  /** Free-form per-group data for states and templates. */
  data: Record<string, unknown>;
}

export type BmcKind = 'ipmi' | 'redfish';

/**
 * The firmware mode a one-time network boot override asks the BMC for. A BMC boots the mode it is told (IPMI's
 * "BIOS boot type" bit reads as legacy when unset), so a UEFI-only machine needs `uefi` said out loud.
 */
export type BmcBootMode = 'uefi' | 'legacy';

export interface Bmc {
  address: string;
  kind: BmcKind;
  /** Unset: the mode the machine's last network boot showed (iPXE's platform), else the BMC's default. */
  bootMode?: BmcBootMode;
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
  /** The group's data with the node's overrides.data merged on top. */
  data: Record<string, unknown>;
  /** The node's own overrides.data alone, when it has any: its layer in the pillar, above the group's pillar file. */
  ownData?: Record<string, unknown>;
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
