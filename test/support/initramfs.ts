import { execFileSync } from 'node:child_process';
import { copyFileSync, openSync, readFileSync, readSync, closeSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ensureCached } from './cache.js';

/**
 * A tiny initramfs for QEMU tests: busybox-static, the NIC drivers for the Debian installer's kernel, and an /init
 * that takes a DHCP lease and reports to `rackseed.server` the way a provisioned node would. The kernel is the
 * d-i netboot `linux` (signed, so UEFI tests can use it too), and the modules come out of the d-i initrd because
 * they must match that exact kernel build: a module from any other build fails its vermagic check.
 *
 * The archive is written in TS (newc is simple) rather than with `cpio -o`, so that it can contain /dev/console
 * without root and is byte-for-byte reproducible (uid/gid 0, mtime 0).
 */

export const DI_DIR = '/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64';
const DI_KERNEL = join(DI_DIR, 'linux');
const DI_INITRD = join(DI_DIR, 'initrd.gz');
const BUSYBOX = '/bin/busybox';
const APT_HINT = 'apt-get install -y --no-install-recommends debian-installer-12-netboot-amd64 busybox-static';

/** Modules the /init loads; their dependencies are resolved from each module's own `depends=`. */
const WANTED_MODULES = ['e1000', 'virtio_net', 'virtio_pci'] as const;

/** Bump when the archive layout changes in a way the script texts do not capture. */
const FORMAT = 1;

const UDHCPC_SCRIPT = `#!/bin/sh
# udhcpc only negotiates; applying the lease is this script's job.
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    for r in $router; do
      ip route replace default via "$r" dev "$interface"
      break
    done
    echo "$ip" > /run/rackseed-ip
    echo "RACKSEED-INITRAMFS: lease $ip/\${mask:-24} router \${router:-none} server \${serverid:-?} on $interface"
    ;;
esac
exit 0
`;

const INIT_SCRIPT = `#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Everything goes to the serial console: that is all a test can read.
exec </dev/console >/dev/console 2>&1
say() { echo "RACKSEED-INITRAMFS: $*"; }
finish() {
  say "poweroff"
  poweroff -f
  # poweroff -f does not return; if it ever did, exiting /init would panic the kernel instead of halting.
  while :; do sleep 60; done
}
say "up"

for word in $(cat /proc/cmdline); do
  case "$word" in
    rackseed.server=*) SERVER="\${word#*=}" ;;
    rackseed.node=*) NODE="\${word#*=}" ;;
    rackseed.mac=*) MAC="\${word#*=}" ;;
    rackseed.token=*) TOKEN="\${word#*=}" ;;
  esac
done
say "kernel $(uname -r) server=\${SERVER:-unset} node=\${NODE:-unset} mac=\${MAC:-unset}"

while read -r ko; do
  insmod "$ko" 2>/dev/null || say "insmod $ko failed"
done < /etc/rackseed-modules

# The first interface that is not loopback; drivers register theirs asynchronously, so wait a little.
IF=
i=0
while [ -z "$IF" ] && [ $i -lt 100 ]; do
  for d in /sys/class/net/*; do
    n="\${d##*/}"
    [ "$n" = lo ] && continue
    [ -e "$d" ] && { IF="$n"; break; }
  done
  [ -z "$IF" ] && { i=$((i + 1)); usleep 100000; }
done
if [ -z "$IF" ]; then
  say "no network interface"
  say "report failed"
  finish
fi
ip link set lo up
ip link set "$IF" up
say "interface $IF $(cat /sys/class/net/$IF/address)"

if ! udhcpc -i "$IF" -n -q -t 10 -s /etc/udhcpc.script; then
  say "dhcp failed"
  say "report failed"
  finish
fi
IP="$(cat /run/rackseed-ip 2>/dev/null)"

BODY="{\\"stage\\":\\"initramfs\\",\\"detail\\":{\\"ip\\":\\"$IP\\",\\"kernel\\":\\"$(uname -r)\\"}}"
# Not wget -T: busybox-static 1.35's wget segfaults with it (reproducible on the host too).
if RESP="$(timeout 20 wget -q -O- --header "Authorization: Bearer $TOKEN" --header "Content-Type: application/json" --post-data "$BODY" "$SERVER/node/v1/report")"; then
  say "response $RESP"
  say "reported ok"
else
  say "report failed"
fi
finish
`;

// ---- newc ----------------------------------------------------------------------------------------------------

interface CpioEntry {
  readonly name: string;
  readonly mode: number;
  readonly nlink: number;
  readonly rdevmajor: number;
  readonly rdevminor: number;
  readonly data: Buffer;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/** Reads every entry of a newc archive, including several archives concatenated (padding between them skipped). */
export function readNewc(buf: Buffer): CpioEntry[] {
  const out: CpioEntry[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf[at] === 0) {
      at++;
      continue;
    }
    const magic = buf.toString('latin1', at, at + 6);
    if (magic !== '070701' && magic !== '070702') throw new Error(`not a newc cpio entry at offset ${at} (${JSON.stringify(magic)})`);
    const field = (i: number): number => parseInt(buf.toString('latin1', at + 6 + i * 8, at + 14 + i * 8), 16);
    const mode = field(1);
    const nlink = field(4);
    const filesize = field(6);
    const rdevmajor = field(9);
    const rdevminor = field(10);
    const namesize = field(11);
    const nameStart = at + 110;
    const name = buf.toString('utf8', nameStart, nameStart + namesize - 1);
    const dataStart = nameStart + namesize + pad4(110 + namesize);
    const data = buf.subarray(dataStart, dataStart + filesize);
    at = dataStart + filesize + pad4(filesize);
    if (name === 'TRAILER!!!') continue;
    out.push({ name, mode, nlink, rdevmajor, rdevminor, data });
  }
  return out;
}

/** Writes a newc archive: uid/gid 0 and mtime 0 so that the same inputs give the same bytes. */
export function writeNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  const push = (e: CpioEntry, ino: number): void => {
    const name = Buffer.from(`${e.name}\0`, 'utf8');
    const header = `070701${[ino, e.mode, 0, 0, e.nlink, 0, e.data.length, 0, 0, e.rdevmajor, e.rdevminor, name.length, 0].map(hex).join('')}`;
    parts.push(Buffer.from(header, 'latin1'), name, Buffer.alloc(pad4(110 + name.length)), e.data, Buffer.alloc(pad4(e.data.length)));
  };
  entries.forEach((e, i) => push(e, i + 1));
  push({ name: 'TRAILER!!!', mode: 0, nlink: 1, rdevmajor: 0, rdevminor: 0, data: Buffer.alloc(0) }, 0);
  return Buffer.concat(parts);
}

// ---- helpers ------------------------------------------------------------------------------------------------

/** The release string of a bzImage, from its setup header (`kernel_version` at 0x20E points into the image). */
export function bzImageVersion(path: string): string {
  const fd = openSync(path, 'r');
  try {
    // The pointer is 16 bits, so the string lies within the first 64 KiB + 0x200 (+ its own length).
    const head = Buffer.alloc(0x10400);
    const got = readSync(fd, head, 0, head.length, 0);
    if (head.toString('latin1', 0x202, 0x206) !== 'HdrS') throw new Error(`${path} is not a bzImage`);
    const off = head.readUInt16LE(0x20e) + 0x200;
    const end = head.indexOf(0, off);
    const version = off < got && end > off ? head.toString('latin1', off, end).split(' ')[0] : undefined;
    if (!version) throw new Error(`${path}: empty kernel version`);
    return version;
  } finally {
    closeSync(fd);
  }
}

/** A value from a module's .modinfo section (NUL-separated `key=value` strings); good enough without an ELF parser. */
function modinfo(ko: Buffer, key: string): string | undefined {
  const needle = Buffer.from(`\0${key}=`, 'latin1');
  const at = ko.indexOf(needle);
  if (at < 0) return undefined;
  const start = at + needle.length;
  return ko.toString('latin1', start, ko.indexOf(0, start));
}

function fileStamp(path: string): { path: string; size: number; mtimeMs: number } {
  try {
    const st = statSync(path);
    return { path, size: st.size, mtimeMs: Math.trunc(st.mtimeMs) };
  } catch {
    throw new Error(`${path} is missing; install the test peers: ${APT_HINT}`);
  }
}

export interface TestInitramfs {
  /** The d-i netboot kernel, copied into the cache. */
  readonly kernel: string;
  /** gzip'd newc archive. */
  readonly initrd: string;
  /** `uname -r` inside the VM. */
  readonly kernelVersion: string;
}

/**
 * Builds (or finds in the cache) the test kernel and initramfs. Cache key: both scripts, the wanted modules and
 * the size+mtime of the d-i kernel, d-i initrd and busybox, so a package upgrade rebuilds it.
 */
export async function buildTestInitramfs(): Promise<TestInitramfs> {
  const busybox = realpathSync(fileStamp(BUSYBOX).path);
  const recipe = {
    format: FORMAT,
    kernel: fileStamp(DI_KERNEL),
    diInitrd: fileStamp(DI_INITRD),
    busybox: fileStamp(busybox),
    modules: WANTED_MODULES,
    init: INIT_SCRIPT,
    udhcpc: UDHCPC_SCRIPT,
  };
  const dir = await ensureCached('test-initramfs', recipe, async (tmp) => {
    copyFileSync(DI_KERNEL, join(tmp, 'linux'));
    const version = bzImageVersion(DI_KERNEL);
    const modDir = `lib/modules/${version}`;

    const di = readNewc(gunzipSync(readFileSync(DI_INITRD)));
    const byModName = new Map<string, CpioEntry>();
    let builtin = '';
    for (const e of di) {
      if (e.name === `${modDir}/modules.builtin`) builtin = e.data.toString('utf8');
      const m = /\/([^/]+)\.ko$/.exec(e.name);
      if (m?.[1] && e.name.startsWith(`${modDir}/`) && (e.mode & 0o170000) === S_IFREG) byModName.set(m[1].replaceAll('-', '_'), e);
    }
    if (byModName.size === 0) throw new Error(`${DI_INITRD} has no modules for kernel ${version} (${DI_KERNEL}): the two files do not match`);
    const builtinNames = new Set(
      builtin
        .split('\n')
        .map((l) => /\/([^/]+)\.ko$/.exec(l)?.[1]?.replaceAll('-', '_'))
        .filter((n): n is string => !!n),
    );

    // Dependencies first, so plain insmod (no modules.dep needed at run time) finds every symbol it needs.
    const order: CpioEntry[] = [];
    const seen = new Set<string>();
    const visit = (name: string, chain: string[]): void => {
      if (seen.has(name) || builtinNames.has(name)) return;
      if (chain.includes(name)) throw new Error(`module dependency cycle: ${[...chain, name].join(' -> ')}`);
      const e = byModName.get(name);
      if (!e) throw new Error(`module ${name} (needed by ${chain.join(' -> ') || 'the test initramfs'}) is not in ${DI_INITRD}`);
      if (e.data.length === 0) throw new Error(`module ${e.name} is an empty (hard link) entry in ${DI_INITRD}`);
      const vermagic = modinfo(e.data, 'vermagic') ?? '';
      if (!vermagic.startsWith(`${version} `)) throw new Error(`${e.name} was built for ${JSON.stringify(vermagic)}, the kernel is ${version}`);
      for (const dep of (modinfo(e.data, 'depends') ?? '').split(',').filter(Boolean)) visit(dep, [...chain, name]);
      seen.add(name);
      order.push(e);
    };
    for (const m of WANTED_MODULES) visit(m, []);

    const entries: CpioEntry[] = [];
    const dirs = new Set<string>();
    const dir = (name: string): void => {
      const parts = name.split('/');
      for (let i = 1; i <= parts.length; i++) {
        const p = parts.slice(0, i).join('/');
        if (dirs.has(p)) continue;
        dirs.add(p);
        entries.push({ name: p, mode: S_IFDIR | 0o755, nlink: 2, rdevmajor: 0, rdevminor: 0, data: Buffer.alloc(0) });
      }
    };
    const file = (name: string, data: Buffer, perm = 0o644): void => {
      const slash = name.lastIndexOf('/');
      if (slash > 0) dir(name.slice(0, slash));
      entries.push({ name, mode: S_IFREG | perm, nlink: 1, rdevmajor: 0, rdevminor: 0, data });
    };
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev', 'run', 'tmp', 'etc', 'root']) dir(d);
    // The kernel opens /dev/console before running /init; without the node /init would start with no stdio.
    entries.push({ name: 'dev/console', mode: S_IFCHR | 0o600, nlink: 1, rdevmajor: 5, rdevminor: 1, data: Buffer.alloc(0) });
    file('bin/busybox', readFileSync(busybox), 0o755);
    const applets = execFileSync(busybox, ['--list-full'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && l !== 'bin/busybox' && !l.includes('..'));
    for (const applet of applets) {
      const slash = applet.lastIndexOf('/');
      if (slash > 0) dir(applet.slice(0, slash));
      entries.push({ name: applet, mode: S_IFLNK | 0o777, nlink: 1, rdevmajor: 0, rdevminor: 0, data: Buffer.from('/bin/busybox') });
    }
    for (const e of order) file(e.name, e.data);
    file('etc/rackseed-modules', Buffer.from(order.map((e) => `/${e.name}\n`).join('')));
    file('etc/udhcpc.script', Buffer.from(UDHCPC_SCRIPT), 0o755);
    file('init', Buffer.from(INIT_SCRIPT), 0o755);

    writeFileSync(join(tmp, 'initrd.gz'), gzipSync(writeNewc(entries), { level: 9 }));
    writeFileSync(
      join(tmp, 'manifest.json'),
      `${JSON.stringify({ kernelVersion: version, modules: order.map((e) => e.name), recipe }, null, 2)}\n`,
    );
  });
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { kernelVersion: string };
  return { kernel: join(dir, 'linux'), initrd: join(dir, 'initrd.gz'), kernelVersion: manifest.kernelVersion };
}
