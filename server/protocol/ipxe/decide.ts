import type { ResolvedNode } from '../../model/inventory.js';
import { isInstallFailure, WIPE_STAGE, type InstalledImage, type LifecycleStatus } from '../../model/lifecycle.js';

/** What iPXE tells us about the machine on the per-machine URL (from the entry script's ${...} variables). */
export interface MachineFacts {
  mac: string;
  uuid?: string;
  serial?: string;
  manufacturer?: string;
  product?: string;
  platform?: string;
  buildarch?: string;
}

export interface BootSettings {
  /** Base URL nodes reach rackseed on, without a trailing slash. */
  baseUrl: string;
  /** Installer kernel and initrd, as paths under the files route. */
  provisionKernel: string;
  provisionInitrd: string;
}

/**
 * What the boot decision needs from the image catalog: whether an image is there, whether it has a kernel, and the
 * sha256 of its rootfs tarball (which tells a rebuilt image from the one a node installed under the same name).
 */
export type CatalogLookup = (image: string) => { hasKernel: boolean; sha256: string } | undefined;

export type ScriptPlan =
  | { kind: 'unknown'; facts: MachineFacts }
  | { kind: 'provision'; node: ResolvedNode; context: Record<string, unknown> }
  | { kind: 'wipe'; node: ResolvedNode; context: Record<string, unknown> }
  | { kind: 'local'; node: ResolvedNode; context: Record<string, unknown> }
  | { kind: 'kernel'; node: ResolvedNode; context: Record<string, unknown> }
  | { kind: 'unavailable'; node: ResolvedNode; context: Record<string, unknown> };

function fileUrl(baseUrl: string, relPath: string): string {
  return `${baseUrl}/files/${relPath.split('/').map(encodeURIComponent).join('/')}`;
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/**
 * Why provisioning is the right answer now, or undefined when the node should boot what it has.
 * Provisioning is never implied for a machine outside the inventory, nor for a node whose install failed
 * (that would loop on a broken disk): the operator asks again with a reimage.
 */
function needsProvisioning(status: LifecycleStatus | undefined): boolean {
  if (!status) return true;
  if (status.reimageRequested) return true;
  switch (status.state) {
    case 'discovered':
    case 'assigned':
    case 'provisioning': // rebooted in the middle of an install: start it again
      return true;
    case 'installed':
    case 'configuring':
    case 'ready':
    case 'failed':
    case 'wiping': // a wipe restarted by a reboot is decided before this
    case 'wiped': // erased on purpose: it installs again only when reimaged
      return false;
  }
}

/** Why the server cannot make a node's install plan, and the API error code a plan request gets for it. */
export interface ProvisioningRefusal {
  code: 'IMAGE_NOT_FOUND' | 'BAD_REQUEST';
  reason: string;
}

/**
 * Why the server cannot make this node's install plan; undefined when it can. Checked before its installer is booted
 * (decideScript) and again when the installer asks for the plan, in case the image or the layout went away between.
 */
export function provisioningRefusal(node: ResolvedNode, catalog: CatalogLookup): ProvisioningRefusal | undefined {
  if (!node.image) return { code: 'IMAGE_NOT_FOUND', reason: `group ${node.group} names no image` };
  const image = catalog(node.image);
  if (!image) return { code: 'IMAGE_NOT_FOUND', reason: `image ${node.image} is not in the catalog (build or import it, then boot the node again)` };
  if (!node.disk) return { code: 'BAD_REQUEST', reason: `group ${node.group} has no disk layout (disk:) to install onto` };
  if (node.installedBoot === 'kernel' && !image.hasKernel) {
    // Installing would succeed and every later boot would fail: iPXE has no kernel to boot and the disk no loader.
    return {
      code: 'BAD_REQUEST',
      reason: `group ${node.group} boots the image's own kernel (installed_boot: kernel), but image ${node.image} has no kernel and initrd (an import without /boot/vmlinuz-*): use installed_boot: local or an image with a kernel`,
    };
  }
  return undefined;
}

/** Why the installed image's kernel cannot be served (the image left the catalog or was rebuilt), or undefined. */
function installedKernelRefusal(installed: InstalledImage, catalog: CatalogLookup): string | undefined {
  const image = catalog(installed.name);
  const reimage = 'import that image again, or reimage the node';
  if (!image) return `the image on its disk (${installed.name}) is no longer in the catalog, and its kernel boots from there: ${reimage}`;
  if (image.sha256 !== installed.sha256) {
    return `image ${installed.name} was rebuilt since this node installed it (sha256 ${installed.sha256.slice(0, 12)}…, now ${image.sha256.slice(0, 12)}…): its kernel may not match the modules on the disk; ${reimage}`;
  }
  if (!image.hasKernel) return `image ${installed.name} on its disk has no kernel and initrd to boot: ${reimage}`;
  return undefined;
}

/** Pure: which script a machine gets, from its inventory entry and observed status. */
export function decideScript(input: {
  facts: MachineFacts;
  node: ResolvedNode | undefined;
  status: LifecycleStatus | undefined;
  settings: BootSettings;
  /** The node's short-lived report token, written on the installer's command line. */
  token?: string;
  catalog: CatalogLookup;
  /**
   * Why the installer cannot boot here (its kernel or initrd is missing from the data directory), if it cannot.
   * Asked only when the node is to be provisioned: the I/O layer's check (and its log line) is not for other boots.
   */
  installerProblem?: () => string | undefined;
}): ScriptPlan {
  const { facts, node, status, settings } = input;
  if (!node) return { kind: 'unknown', facts };
  const common = { node: node.name, group: node.group, mac: facts.mac };
  /** The installer's kernel, initrd and command line: what a provisioning and a wipe script boot alike. */
  const installerBoot = () => ({
    kernel_url: fileUrl(settings.baseUrl, settings.provisionKernel),
    initrd_urls: [fileUrl(settings.baseUrl, settings.provisionInitrd)],
    initrd_name: basename(settings.provisionInitrd),
    cmdline: [
      ...node.kernelArgs,
      `rackseed.server=${settings.baseUrl}`,
      `rackseed.node=${node.name}`,
      `rackseed.mac=${facts.mac}`,
      ...(input.token ? [`rackseed.token=${input.token}`] : []),
    ],
    retry_url: `${settings.baseUrl}/boot.ipxe`,
  });

  // Before everything else: a wipe is what the operator asked for last about this machine's disks, whatever they
  // hold (a failed install included), and one interrupted by a reboot starts again. It needs no image, only the
  // installer.
  if (status?.wipeRequested !== undefined) {
    const refused = input.installerProblem?.();
    if (refused) return { kind: 'unavailable', node, context: { ...common, reason: refused } };
    return { kind: 'wipe', node, context: { ...common, mode: status.wipeRequested, ...installerBoot() } };
  }

  // A failure in an installer stage; the server's own stages after install (states, readiness) leave the OS bootable.
  if (isInstallFailure(status) && !status?.reimageRequested) {
    const wipe = status?.stage === WIPE_STAGE;
    return {
      kind: 'unavailable',
      node,
      context: { ...common, reason: wipe ? `wiping its disks failed (${status?.reason ?? 'no reason given'}): wipe it again, or reimage it` : `install failed (${status?.reason ?? 'no reason given'}), request a reimage to try again` },
    };
  }

  if (status?.state === 'wiped' && !status.reimageRequested) {
    return { kind: 'unavailable', node, context: { ...common, reason: 'its disks were wiped (rackseed wipe): reimage it to install it again' } };
  }

  if (needsProvisioning(status)) {
    // Booting the installer for a plan the server will refuse would only mark the node failed (needing a reimage
    // once the cause is fixed); told "unavailable", it provisions on its next boot after the fix.
    const refused = provisioningRefusal(node, input.catalog)?.reason ?? input.installerProblem?.();
    if (refused) return { kind: 'unavailable', node, context: { ...common, reason: refused } };
    return { kind: 'provision', node, context: { ...common, image: node.image, ...installerBoot() } };
  }

  if (node.installedBoot === 'kernel' && node.image) {
    const installed = status?.installedImage;
    // The kernel must be the one whose modules are on the disk: the installed image's, not the group's image of today
    // (an operator moves a group to a new image before reimaging its nodes). A node installed before the server kept
    // track of this boots its group's image, as it always did.
    const image = installed?.name ?? node.image;
    const refused = installed && installedKernelRefusal(installed, input.catalog);
    if (refused) return { kind: 'unavailable', node, context: { ...common, reason: refused } };
    const imageDir = `images/${image}`;
    return {
      kind: 'kernel',
      node,
      context: {
        ...common,
        image,
        kernel_url: fileUrl(settings.baseUrl, `${imageDir}/vmlinuz`),
        initrd_urls: [fileUrl(settings.baseUrl, `${imageDir}/initrd.img`)],
        initrd_name: 'initrd.img',
        cmdline: ['root=LABEL=rackseed-root', 'ro', ...node.kernelArgs],
      },
    };
  }
  return { kind: 'local', node, context: common };
}
