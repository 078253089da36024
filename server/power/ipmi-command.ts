import type { BmcBootMode } from '../model/inventory.js';
import type { BmcTarget, PowerState } from './types.js';

/**
 * ipmitool's command line for one BMC. Pure. The password is deliberately absent: `-E` makes ipmitool read it from
 * IPMI_PASSWORD, so it never shows in `ps` or in /proc/<pid>/cmdline.
 */
export function ipmitoolArgs(target: BmcTarget, command: readonly string[]): string[] {
  const c = target.credential;
  return [
    '-I', 'lanplus',
    '-H', target.bmc.address,
    '-p', String(c.port ?? 623),
    '-U', c.username,
    '-E',
    ...(c.cipherSuite !== undefined ? ['-C', String(c.cipherSuite)] : []),
    ...command,
  ];
}

/**
 * Next boot from the network, once (no options=persistent). `options=efiboot` sets the boot flags' "BIOS boot type"
 * bit to EFI; without it the flags say legacy, which a UEFI-only machine may not be able to do.
 */
export function pxeBootdevCommand(mode: BmcBootMode | undefined): string[] {
  return ['chassis', 'bootdev', 'pxe', ...(mode === 'uefi' ? ['options=efiboot'] : [])];
}

/** `Chassis Power is on` / `Chassis Power is off` (ipmitool chassis power status). */
export function parseIpmiPowerStatus(stdout: string): PowerState {
  const m = /Chassis Power is (on|off)\b/i.exec(stdout);
  return m ? (m[1]!.toLowerCase() as PowerState) : 'unknown';
}

/** The line of ipmitool's stderr worth showing an operator (it often prints blank lines and a generic tail). */
export function ipmitoolError(stderr: string, exitCode: number | null): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const specific = lines.find((l) => !/^Error: Unable to establish IPMI v2/.test(l)) ?? lines[0];
  return specific ? `ipmitool: ${specific}` : `ipmitool exited with status ${exitCode ?? 'unknown'}`;
}
