/**
 * What the installer can do with a disk layout, shared by the inventory (which refuses a layout when it is loaded,
 * naming the file, line and key) and the install plan (which checks again, since a plan must never reach a disk it
 * would leave half made). Pure.
 */

/** A kernel device name: the installer has no udev, so /dev/disk/by-* links do not exist there. */
export const DISK_DEVICE = /^\/dev\/[A-Za-z0-9][A-Za-z0-9_/-]{0,63}$/;
export const PARTITION_SIZE = /^([1-9][0-9]{0,8}[KMGT]|rest)$/;
export const MOUNT_POINT = /^(swap|\/|(\/[A-Za-z0-9._-]+)+)$/;
/**
 * One kernel argument, written by the installer between single quotes into a file GRUB's scripts source: no
 * whitespace, quotes, backslash, $, backtick, glob or shell punctuation can reach it.
 */
export const GRUB_KERNEL_ARG = /^[A-Za-z0-9._:/@%=+~,-]{1,256}$/;
export const GRUB_KERNEL_ARG_CHARS = 'letters, digits and ._:/@%=+~,-';

/** Primary partitions an MS-DOS table holds; sfdisk silently drops the rest. */
export const DOS_MAX_PARTITIONS = 4;
export const GPT_MAX_PARTITIONS = 32;

export interface LayoutProblem {
  /** Below the disk: ['device'], ['partitions', 2, 'mount'], ... */
  path: Array<string | number>;
  message: string;
}

interface LayoutInput {
  device: string;
  table: string;
  partitions: ReadonlyArray<{ mount: string; size: string; fs: string }>;
}

/** Every reason the installer could not lay this disk out, or would lay it out otherwise than written. */
export function diskLayoutProblems(disk: LayoutInput): LayoutProblem[] {
  const problems: LayoutProblem[] = [];
  if (disk.device.startsWith('/dev/disk/')) {
    problems.push({ path: ['device'], message: `${disk.device}: the installer has no udev, so /dev/disk/by-* links do not exist there; name the kernel's device (/dev/sda, /dev/nvme0n1)` });
  } else if (!DISK_DEVICE.test(disk.device)) {
    problems.push({ path: ['device'], message: 'expected a device path such as /dev/sda or /dev/nvme0n1' });
  }
  const max = disk.table === 'dos' ? DOS_MAX_PARTITIONS : GPT_MAX_PARTITIONS;
  if (disk.partitions.length > max) {
    problems.push({ path: ['partitions'], message: `a ${disk.table} table holds at most ${max} partitions here${disk.table === 'dos' ? ' (primary ones; use table: gpt)' : ''}` });
  }
  const mounts = new Set<string>();
  disk.partitions.forEach((p, i) => {
    if (!PARTITION_SIZE.test(p.size)) problems.push({ path: ['partitions', i, 'size'], message: 'expected a size with its unit such as 512M or 8G, or "rest"' });
    if (p.size === 'rest' && i !== disk.partitions.length - 1) problems.push({ path: ['partitions', i, 'size'], message: '"rest" takes the remainder of the disk, so only the last partition may use it' });
    if (!MOUNT_POINT.test(p.mount) || p.mount.split('/').some((seg) => seg === '.' || seg === '..')) {
      problems.push({ path: ['partitions', i, 'mount'], message: 'expected an absolute mount point without a trailing "/", "." or "..", or "swap"' });
    } else if ((p.fs === 'swap') !== (p.mount === 'swap')) {
      problems.push({ path: ['partitions', i, p.fs === 'swap' ? 'mount' : 'fs'], message: 'swap is both the file system and the mount point, or neither' });
    } else if (p.mount !== 'swap') {
      if (mounts.has(p.mount)) problems.push({ path: ['partitions', i, 'mount'], message: `${p.mount} is mounted twice` });
      mounts.add(p.mount);
      if (p.mount === '/' && p.fs !== 'ext4') problems.push({ path: ['partitions', i, 'fs'], message: 'the root file system the installer unpacks the image into is ext4' });
    }
  });
  if (disk.partitions.length > 0 && !mounts.has('/')) problems.push({ path: ['partitions'], message: 'no partition is mounted at /' });
  return problems;
}
