import { diskLayoutProblems, DISK_DEVICE, GRUB_KERNEL_ARG, GRUB_KERNEL_ARG_CHARS } from '../model/disk-rules.js';
import { INSTALLER_FILESYSTEMS, type DiskLayout, type InstalledBoot } from '../model/inventory.js';
import { IMAGE_NAME, SHA256_HEX } from '../model/image.js';
import { WIPE_MODES, type WipeMode } from '../model/lifecycle.js';

/**
 * The install plan: everything the installer on ONE node needs, as one `key value` pair per line. The installer
 * reads it with `while read -r key value` and only ever uses a value as a quoted word, never as code, so the one
 * thing rendering must guarantee is that no value can end its line early or smuggle in another key: every value
 * is checked against what its key may hold, and control characters are refused everywhere.
 *
 * Pure: no I/O, no clock; the same input always gives the same bytes (golden-tested).
 */

export interface PlanInput {
  node: {
    name: string;
    /** The MAC the node provisions through; the installed OS configures DHCP on it. */
    mac: string;
    installedBoot: InstalledBoot;
    /**
     * The group's kernel arguments. With installed_boot kernel they are on the iPXE script's kernel line; with
     * local the installer writes them into the installed GRUB's configuration, so they are in the plan only then.
     */
    kernelArgs: string[];
    disk: DiskLayout;
  };
  image: {
    name: string;
    sha256: string;
    size: number;
  };
  urls: {
    torrent: string;
    http: string;
    report: string;
  };
  keys: {
    /** The node's SSH host private key file, exactly as ssh-keygen wrote it. */
    hostPrivate: string;
    /** The matching public key line (`ssh-ed25519 AAAA... comment`). */
    hostPublic: string;
    /** Public key lines that may log in as root (the server's own key first). */
    authorized: string[];
  };
  /**
   * How the INSTALLED system calls the server back: its first-boot unit POSTs to bootedUrl with this long-lived,
   * node- and purpose-bound token (server/auth/callback-token.ts). Left out: no first-boot callback is installed
   * and the server finds the node by probing its SSH port instead.
   */
  callback?: {
    bootedUrl: string;
    token: string;
  };
}

export class PlanError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`plan ${key}: ${message}`);
    this.name = 'PlanError';
  }
}


const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;
const URL_TEXT = /^https?:\/\/[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const PUBLIC_KEY = /^ssh-ed25519 [A-Za-z0-9+/]+={0,2}( [\x21-\x7e][\x20-\x7e]*)?$/;
const CALLBACK_TOKEN = /^[A-Za-z0-9._-]{1,256}$/;

function check(key: string, value: string, re: RegExp, what: string): string {
  if (CONTROL.test(value)) throw new PlanError(key, 'control characters (a newline would split the line) are not allowed');
  if (!re.test(value)) throw new PlanError(key, `${JSON.stringify(value.slice(0, 80))} is not ${what}`);
  return value;
}

function partitionLines(disk: DiskLayout): string[] {
  if (disk.partitions.length === 0) throw new PlanError('part', 'the disk layout has no partitions');
  disk.partitions.forEach((p, i) => {
    if (CONTROL.test(p.size) || CONTROL.test(p.mount)) throw new PlanError('part', 'control characters (a newline would split the line) are not allowed');
    // The inventory refuses these at load; checked again because a plan must never reach a half-made disk.
    if (!(INSTALLER_FILESYSTEMS as readonly string[]).includes(p.fs)) {
      throw new PlanError('part', `partition ${i + 1}: the installer makes ${INSTALLER_FILESYSTEMS.join(', ')} file systems, not ${JSON.stringify(p.fs)}`);
    }
  });
  const [problem] = diskLayoutProblems(disk);
  if (problem) {
    const where = typeof problem.path[1] === 'number' ? `partition ${problem.path[1] + 1}: ` : '';
    throw new PlanError(problem.path[0] === 'device' ? 'disk' : 'part', `${where}${problem.message}`);
  }
  return disk.partitions.map((p, i) => `part ${i + 1} ${p.size} ${p.fs} ${p.mount}`);
}

function kernelArgsLine(boot: InstalledBoot, args: string[]): string[] {
  if (boot !== 'local' || args.length === 0) return [];
  if (args.length > 64) throw new PlanError('kernel_args', 'more than 64 kernel arguments');
  return [`kernel_args ${args.map((a) => check('kernel_args', a, GRUB_KERNEL_ARG, `a kernel argument GRUB can take as it is (${GRUB_KERNEL_ARG_CHARS})`)).join(' ')}`];
}

/** Renders the plan text; throws PlanError naming the offending key when any value could break the format. */
export function renderPlan(input: PlanInput): string {
  const { node, image, urls, keys, callback } = input;
  if (!Number.isSafeInteger(image.size) || image.size <= 0) throw new PlanError('size', `${image.size} is not a positive byte count`);
  if (node.disk.table !== 'gpt' && node.disk.table !== 'dos') throw new PlanError('table', `${JSON.stringify(node.disk.table)} is not gpt or dos`);
  if (node.installedBoot !== 'kernel' && node.installedBoot !== 'local') throw new PlanError('installed_boot', `${JSON.stringify(node.installedBoot)} is not kernel or local`);
  const privateKey = Buffer.from(keys.hostPrivate, 'utf8').toString('base64');
  const lines = [
    '# rackseed install plan v1',
    `version 1`,
    `hostname ${check('hostname', node.name, HOSTNAME, 'an RFC 1123 host name')}`,
    `net_mac ${check('net_mac', node.mac, MAC, 'a lower-case aa:bb:cc:dd:ee:ff MAC')}`,
    `disk ${check('disk', node.disk.device, DISK_DEVICE, 'a /dev/ path')}`,
    `table ${node.disk.table}`,
    ...partitionLines(node.disk),
    `image ${check('image', image.name, IMAGE_NAME, 'an image name')}`,
    `torrent_url ${check('torrent_url', urls.torrent, URL_TEXT, 'an http(s) URL')}`,
    `http_url ${check('http_url', urls.http, URL_TEXT, 'an http(s) URL')}`,
    `sha256 ${check('sha256', image.sha256, SHA256_HEX, '64 lower-case hex digits')}`,
    `size ${image.size}`,
    `report_url ${check('report_url', urls.report, URL_TEXT, 'an http(s) URL')}`,
    `ssh_host_key ed25519 ${check('ssh_host_key', privateKey, BASE64, 'base64')}`,
    `ssh_host_pub ed25519 ${check('ssh_host_pub', keys.hostPublic.trim(), PUBLIC_KEY, 'an ssh-ed25519 public key line')}`,
    ...keys.authorized.map((k) => `authorized_key ${check('authorized_key', k.trim(), PUBLIC_KEY, 'an ssh-ed25519 public key line')}`),
    `installed_boot ${node.installedBoot}`,
    ...kernelArgsLine(node.installedBoot, node.kernelArgs),
    ...(callback
      ? [
          `booted_url ${check('booted_url', callback.bootedUrl, URL_TEXT, 'an http(s) URL')}`,
          `callback_token ${check('callback_token', callback.token, CALLBACK_TOKEN, 'a callback token')}`,
        ]
      : []),
    'end',
  ];
  return `${lines.join('\n')}\n`;
}

export interface WipePlanInput {
  node: { name: string };
  mode: WipeMode;
  urls: { report: string };
  /**
   * The node token the installer reports the wipe with: a full wipe of large disks takes longer than the boot
   * token lives. Its plan fetch is already spent, so it fetches nothing; it only reports for this node.
   */
  reportToken?: string;
}

/**
 * The wipe plan (`rackseed wipe`): the same format and the same single-use fetch as the install plan, with
 * `action wipe`. It carries no host key and no image: only the mode, where to report, and the token to report with. An installer that predates wipes refuses it (it lacks an install plan's keys) and erases nothing.
 */
export function renderWipePlan(input: WipePlanInput): string {
  if (!(WIPE_MODES as readonly string[]).includes(input.mode)) throw new PlanError('mode', `${JSON.stringify(input.mode)} is not ${WIPE_MODES.join(' or ')}`);
  const lines = [
    '# rackseed wipe plan v1',
    'version 1',
    'action wipe',
    `hostname ${check('hostname', input.node.name, HOSTNAME, 'an RFC 1123 host name')}`,
    `mode ${input.mode}`,
    `report_url ${check('report_url', input.urls.report, URL_TEXT, 'an http(s) URL')}`,
    ...(input.reportToken !== undefined ? [`report_token ${check('report_token', input.reportToken, CALLBACK_TOKEN, 'a node token')}`] : []),
    'end',
  ];
  return `${lines.join('\n')}\n`;
}
