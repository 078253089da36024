import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Netns } from './netns.js';

/**
 * Real (emulated) machines for the virtual lab and the tests: QEMU on a tap in a namespace of the lab's, PXE-booting with the iPXE option ROMs
 * Debian ships, under SeaBIOS or OVMF, or booting a kernel directly. The serial console is the test's eyes.
 *
 * Facts this relies on (see /work/shared/notes/machine-facts.md): KVM is unusable here, so always TCG;
 * SeaBIOS, OVMF, iPXE and the kernel (console=ttyS0) all print to the serial port with -nographic.
 *
 * Measured here: iPXE (both ROMs) waits ~13 s after DHCP for an IPv6 router advertisement; `answerIpv6Ra` (on by
 * default) removes that wait. OVMF adds ~4 s before iPXE starts.
 *
 * A VM is identified by `workDir` + `name`: its UEFI variable store and its disk live there and are created only
 * when missing, so starting the same VM again (say with `bootOrder: 'disk'` after an install) boots what the
 * previous run left behind, as a real machine would.
 */

const QEMU = 'qemu-system-x86_64';
const ROM_BIOS = '/usr/lib/ipxe/qemu/pxe-e1000.rom';
const ROM_UEFI = '/usr/lib/ipxe/qemu/efi-e1000.rom';
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const APT_HINT = 'apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils ipxe-qemu ovmf';

/** What the tail of the serial log in an error message shows. */
const TAIL_BYTES = 2048;

export interface SmbiosSystem {
  readonly manufacturer?: string;
  readonly product?: string;
  readonly serial?: string;
  /** SMBIOS system UUID; the default is derived from the VM's name and MAC, so it is stable across runs. */
  readonly uuid?: string;
}

export interface StartVmOptions {
  readonly netns: Netns;
  /** Namespace for the tap; QEMU runs inside it too. */
  readonly ns: string;
  /** Bridge in `ns` the tap joins. */
  readonly bridge: string;
  readonly name: string;
  readonly mac: string;
  readonly firmware: 'bios' | 'uefi';
  /** A blank disk of this size (virtio-blk), created in workDir when missing. */
  readonly diskMiB?: number;
  readonly diskFormat?: 'qcow2' | 'raw';
  /** Direct kernel boot: no firmware network boot at all (harness tests, initramfs tests). */
  readonly kernel?: { readonly kernel: string; readonly initrd: string; readonly append: string };
  /** Which device the firmware tries first; the other one (when present) is the fallback. Default 'network'. */
  readonly bootOrder?: 'network' | 'disk';
  readonly workDir: string;
  readonly smbios?: SmbiosSystem;
  readonly memoryMiB?: number;
  /** Tap name suffix (the netns prefix is added); default `q<n>`. */
  readonly tapSuffix?: string;
  /**
   * Answers iPXE's IPv6 router solicitation from inside QEMU, so iPXE does not sit out its ~13 s wait for a
   * router advertisement. It joins a user-mode (slirp) stack with IPv4 off and `restrict=on` to the NIC's hub:
   * slirp then sends only NDP/RA, never DHCP, and can reach nothing outside the VM. Its RA also reaches the
   * bridge, which is harmless: it is the test namespace's. Default true.
   */
  readonly answerIpv6Ra?: boolean;
  readonly extraArgs?: readonly string[];
  /**
   * 'ipxe-rom' (default): e1000 with QEMU's iPXE option ROM, so the firmware boots straight into iPXE.
   * 'firmware-pxe' (UEFI only): virtio-net without a ROM, so OVMF's own PXE client boots, the way a server's
   * firmware does: DHCP, then an iPXE binary over TFTP, then iPXE.
   */
  readonly nic?: 'ipxe-rom' | 'firmware-pxe';
  /**
   * What a reboot of the guest does. 'exit' (default): QEMU exits (`-no-reboot`), so a test sees each boot as its own
   * run and starts the next one itself. 'reset': the machine resets and boots again in the same QEMU process, as a
   * real one does (the lab: install, reboot, boot the installed system, all under one PID).
   */
  readonly reboot?: 'exit' | 'reset';
}

export interface VmExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Vm {
  readonly name: string;
  readonly pid: number;
  readonly mac: string;
  readonly tap: string;
  readonly uuid: string;
  /** The serial console log file in workDir (raw, appended to across restarts of the same VM). */
  readonly serialLogFile: string;
  /** The disk image, when one was asked for. */
  readonly disk: string | undefined;
  /** The exact QEMU command line, for debugging. */
  readonly args: readonly string[];
  /** Serial output so far, with ANSI escape sequences and carriage returns removed (the log file keeps them). */
  serial(): string;
  /** Serial output so far exactly as the guest wrote it. */
  rawSerial(): string;
  /** Resolves with the first match in the cleaned serial output; rejects on timeout or if QEMU exits first. */
  waitForSerial(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Resolves when QEMU exits; rejects (leaving it running) on timeout. */
  waitForExit(timeoutMs: number): Promise<VmExit>;
  /** Stops QEMU (SIGTERM, then SIGKILL) by its PID only. */
  kill(): Promise<void>;
  readonly exited: VmExit | undefined;
}

let vmCount = 0;

/** QEMU's option parser splits on commas; a literal comma is written twice. */
const qemuValue = (v: string): string => v.replaceAll(',', ',,');

function stableUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  // Version 4 layout bits set so that firmware and OS tools accept it as a well-formed UUID.
  const variant = ((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]|\r/g;

const UNFINISHED_ESCAPE = /\x1b(?:\[[0-9;?]*[ -/]*|[()])?$/;

function requireFile(path: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing; install the QEMU test peers: ${APT_HINT}`);
}

export async function startVm(opts: StartVmOptions): Promise<Vm> {
  const { netns, ns, name, mac, workDir } = opts;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new Error(`VM name ${JSON.stringify(name)} must be a plain file name`);
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) throw new Error(`VM MAC ${JSON.stringify(mac)} is not aa:bb:cc:dd:ee:ff`);
  const uefi = opts.firmware === 'uefi';
  const rom = uefi ? ROM_UEFI : ROM_BIOS;
  requireFile(rom);
  if (uefi) {
    requireFile(OVMF_CODE);
    requireFile(OVMF_VARS);
  }
  mkdirSync(workDir, { recursive: true });

  const smbios = {
    manufacturer: opts.smbios?.manufacturer ?? 'rackseed-test',
    product: opts.smbios?.product ?? 'qemu-vm',
    serial: opts.smbios?.serial ?? `SN-${name}`,
    uuid: opts.smbios?.uuid ?? stableUuid(`${name}/${mac.toLowerCase()}`),
  };
  const bootNetworkFirst = (opts.bootOrder ?? 'network') === 'network';
  const direct = opts.kernel !== undefined;

  const args: string[] = [
    '-name', name,
    '-accel', 'tcg',
    '-m', String(opts.memoryMiB ?? 512),
    '-nographic',
    ...((opts.reboot ?? 'exit') === 'exit' ? ['-no-reboot'] : []),
    '-machine', uefi ? 'q35' : 'pc',
    '-smbios',
    `type=1,manufacturer=${qemuValue(smbios.manufacturer)},product=${qemuValue(smbios.product)},serial=${qemuValue(smbios.serial)},uuid=${smbios.uuid}`,
  ];

  if (uefi) {
    const vars = join(workDir, `${name}.OVMF_VARS.fd`);
    if (!existsSync(vars)) copyFileSync(OVMF_VARS, vars);
    args.push(
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${qemuValue(OVMF_CODE)}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${qemuValue(vars)}`,
    );
  }

  // bootindex rather than -boot: OVMF only honours bootindex, and SeaBIOS honours both, so one mechanism serves both.
  const nicBoot = direct ? '' : `,bootindex=${bootNetworkFirst ? 1 : 2}`;
  const tap = netns.addTap(ns, opts.tapSuffix ?? `q${vmCount++}`, { master: opts.bridge });
  if (opts.answerIpv6Ra ?? true) {
    // NIC, tap and slirp all on one QEMU hub: the hub repeats every frame to every other port.
    args.push(
      '-netdev', 'hubport,id=n0,hubid=0',
      '-netdev', `tap,id=t0,ifname=${tap},script=no,downscript=no`,
      '-netdev', 'hubport,id=h1,hubid=0,netdev=t0',
      '-netdev', 'user,id=ra0,ipv4=off,ipv6=on,restrict=on',
      '-netdev', 'hubport,id=h2,hubid=0,netdev=ra0',
    );
  } else {
    args.push('-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`);
  }
  if (opts.nic === 'firmware-pxe') {
    if (!uefi) throw new Error('firmware-pxe needs UEFI: SeaBIOS has no network stack of its own');
    // No option ROM: OVMF drives virtio-net itself and PXE boots with its own stack, which (unlike an iPXE ROM)
    // does not announce iPXE, so the DHCP server must hand it an iPXE binary over TFTP first.
    args.push('-device', `virtio-net-pci,netdev=n0,mac=${mac},romfile=${nicBoot}`);
  } else {
    args.push('-device', `e1000,netdev=n0,mac=${mac},romfile=${qemuValue(rom)}${nicBoot}`);
  }

  let disk: string | undefined;
  if (opts.diskMiB !== undefined) {
    const format = opts.diskFormat ?? 'qcow2';
    disk = join(workDir, `${name}.${format}`);
    if (!existsSync(disk)) execFileSync('qemu-img', ['create', '-q', '-f', format, disk, `${opts.diskMiB}M`], { stdio: ['ignore', 'ignore', 'pipe'] });
    args.push(
      '-drive', `if=none,id=d0,format=${format},file=${qemuValue(disk)}`,
      '-device', `virtio-blk-pci,drive=d0${direct ? '' : `,bootindex=${bootNetworkFirst ? 2 : 1}`}`,
    );
  }

  if (opts.kernel) {
    args.push('-kernel', opts.kernel.kernel, '-initrd', opts.kernel.initrd, '-append', opts.kernel.append);
  }
  args.push(...(opts.extraArgs ?? []));

  const serialPath = join(workDir, `${name}.serial.log`);
  const stderrPath = join(workDir, `${name}.qemu-stderr.log`);
  const serialFile = createWriteStream(serialPath, { flags: 'a' });
  const stderrFile = createWriteStream(stderrPath, { flags: 'a' });
  serialFile.write(`\n==== ${new Date().toISOString()} ${QEMU} ${args.join(' ')}\n`);

  const child: ChildProcess = netns.spawn(ns, QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new Error(`could not start ${QEMU}: ${err.message}`);
  }
  const pid = child.pid;

  let raw = '';
  let clean = '';
  let stderr = '';
  let exited: VmExit | undefined;
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const l of [...listeners]) l();
  };
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  // An escape sequence can straddle two chunks: its unfinished start waits for the next chunk.
  let pending = '';
  child.stdout?.on('data', (chunk: string) => {
    raw += chunk;
    const text = (pending + chunk).replace(ANSI, '');
    const cut = UNFINISHED_ESCAPE.exec(text);
    pending = cut ? text.slice(cut.index) : '';
    clean += cut ? text.slice(0, cut.index) : text;
    serialFile.write(chunk);
    notify();
  });
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
    stderrFile.write(chunk);
  });
  // 'close' comes after the last stdout data, so a waiter never misses output written just before exit.
  child.once('close', (code, signal) => {
    clean += pending.replace(ANSI, '');
    pending = '';
    exited = { code, signal };
    serialFile.end();
    stderrFile.end();
    // The tap outlives QEMU (it was made persistent by `ip tuntap`); remove it so repeated VMs do not pile up.
    netns.run(ns, 'ip', ['link', 'del', tap]);
    notify();
  });

  const tail = (): string => {
    const s = clean.slice(-TAIL_BYTES);
    const err = stderr.trim() ? `\n--- qemu stderr ---\n${stderr.trim().slice(-TAIL_BYTES)}` : '';
    return `--- last ${s.length} chars of ${name}'s serial console (${serialPath}) ---\n${s}${err}`;
  };

  const waitFor = <T>(check: () => T | undefined, onExit: () => T | Error, timeoutMs: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const done = (): boolean => {
        const hit = check();
        if (hit !== undefined) {
          finish();
          resolve(hit);
          return true;
        }
        if (exited) {
          finish();
          const r = onExit();
          if (r instanceof Error) reject(r);
          else resolve(r);
          return true;
        }
        return false;
      };
      const listener = (): void => void done();
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${name}: timed out after ${timeoutMs} ms waiting for ${what}\n${tail()}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        listeners.delete(listener);
      };
      if (!done()) listeners.add(listener);
    });

  const vm: Vm = {
    name,
    pid,
    mac,
    tap,
    uuid: smbios.uuid,
    disk,
    args,
    serialLogFile: serialPath,
    get exited() {
      return exited;
    },
    serial: () => clean,
    rawSerial: () => raw,
    waitForSerial: (re, timeoutMs) =>
      waitFor(
        () => clean.match(re) ?? undefined,
        () => new Error(`${name}: QEMU exited (code ${exited?.code}, signal ${exited?.signal}) before the serial console matched ${re}\n${tail()}`),
        timeoutMs,
        `${re} on the serial console`,
      ),
    waitForExit: (timeoutMs) =>
      waitFor(
        () => exited,
        () => exited ?? { code: null, signal: null },
        timeoutMs,
        'QEMU to exit',
      ),
    kill: async () => {
      await netns.stop(child, 'SIGTERM', 5_000);
      if (!exited) await new Promise<void>((resolve) => child.once('close', () => resolve()));
    },
  };
  return vm;
}
