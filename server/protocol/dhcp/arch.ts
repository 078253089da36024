/**
 * Client system architecture types (RFC 4578 option 93, IANA "Processor Architecture Types") reduced to the
 * firmwares this server can boot. Anything else is reported, not guessed.
 */

export type Firmware = 'bios' | 'uefi-ia32' | 'uefi-x64' | 'uefi-arm64';

export interface ArchInfo {
  readonly firmware: Firmware;
  /** UEFI HTTP boot (the client fetches a URL itself and expects option 60 "HTTPClient" back). */
  readonly http: boolean;
}

const ARCHES: ReadonlyMap<number, ArchInfo & { readonly name: string }> = new Map([
  [0x00, { name: 'x86 BIOS', firmware: 'bios', http: false }],
  [0x06, { name: 'x86 UEFI', firmware: 'uefi-ia32', http: false }],
  [0x07, { name: 'x64 UEFI', firmware: 'uefi-x64', http: false }],
  // IANA lists 9 as EFI byte code, but shipping x86-64 firmwares send it for x64 (pixiecore and dnsmasq agree).
  [0x09, { name: 'x64 UEFI (EBC code)', firmware: 'uefi-x64', http: false }],
  [0x0b, { name: 'arm64 UEFI', firmware: 'uefi-arm64', http: false }],
  [0x0f, { name: 'x86 UEFI HTTP', firmware: 'uefi-ia32', http: true }],
  [0x10, { name: 'x64 UEFI HTTP', firmware: 'uefi-x64', http: true }],
  [0x13, { name: 'arm64 UEFI HTTP', firmware: 'uefi-arm64', http: true }],
]);

const OTHER_NAMES: ReadonlyMap<number, string> = new Map([
  [0x01, 'NEC/PC98'],
  [0x02, 'Itanium'],
  [0x03, 'DEC Alpha'],
  [0x04, 'Arc x86'],
  [0x05, 'Intel Lean Client'],
  [0x08, 'EFI Xscale'],
  [0x0a, 'arm32 UEFI'],
  [0x0c, 'PowerPC Open Firmware'],
  [0x0d, 'PowerPC ePAPR'],
  [0x0e, 'POWER OPAL v3'],
  [0x11, 'EBC UEFI HTTP'],
  [0x12, 'arm32 UEFI HTTP'],
  [0x14, 'PC/AT BIOS HTTP'],
]);

export function archInfo(code: number): ArchInfo | undefined {
  const a = ARCHES.get(code);
  return a && { firmware: a.firmware, http: a.http };
}

export function archName(code: number): string {
  return ARCHES.get(code)?.name ?? OTHER_NAMES.get(code) ?? 'unknown';
}
