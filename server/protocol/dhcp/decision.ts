import { DEFAULT_UEFI_LOADER, type UefiLoader } from '../../model/inventory.js';
import type { Mac } from '../../model/mac.js';
import type { Firmware } from './arch.js';
import { classify, type NetbootClient, type NotNetbootReason } from './classify.js';
import type { DhcpPacket, Ipv4 } from './packet.js';

/**
 * Step two: what a classified client should load. Firmware gets an iPXE build over TFTP (or over HTTP for UEFI
 * HTTP boot); iPXE itself gets the HTTP entry script. Handing iPXE the script and not another iPXE binary is what
 * breaks the chainload loop.
 */

/** What the decision needs from the rest of the server; the inventory implements loaderFor. */
export interface BootContext {
  readonly serverIp: Ipv4;
  /** e.g. "http://10.0.0.1:8080", no trailing slash needed. */
  readonly httpBaseUrl: string;
  /**
   * Per-machine choice for x86-64 UEFI: snponly.efi uses the firmware's NIC driver, ipxe.efi carries its own.
   * Undefined (an unknown machine) means DEFAULT_UEFI_LOADER.
   */
  loaderFor(mac: Mac): { readonly uefiLoader: UefiLoader } | undefined;
}

export const BIOS_LOADER = 'undionly.kpxe';
export const ARM64_LOADER = 'ipxe-arm64.efi';
export const IPXE_SCRIPT = 'boot.ipxe';

export type IgnoreReason = NotNetbootReason | 'unsupported-arch';

export interface BootChoice {
  readonly kind: 'boot';
  readonly mac: Mac;
  readonly firmware: Firmware | undefined;
  /** 'loader': firmware loads iPXE; 'script': iPXE loads the entry script. */
  readonly stage: 'loader' | 'script';
  readonly transport: 'tftp' | 'http';
  /** A TFTP file name, or a full URL when transport is http. */
  readonly file: string;
  /** Option 60 the reply must carry: UEFI HTTP boot ignores offers without "HTTPClient". */
  readonly vendorClass: 'PXEClient' | 'HTTPClient';
  readonly client: NetbootClient;
}

export type BootDecision =
  | { readonly kind: 'ignore'; readonly reason: IgnoreReason; readonly detail: string }
  | BootChoice;

function base(url: string): string {
  return url.replace(/\/+$/, '');
}

export function decideBoot(p: DhcpPacket, ctx: BootContext): BootDecision {
  const c = classify(p);
  if (c.kind === 'other') return { kind: 'ignore', reason: c.reason, detail: c.detail };
  const client = c.client;
  const common = { kind: 'boot', mac: client.mac, firmware: client.firmware, client } as const;

  if (client.ipxe) {
    const vendorClass = client.vendorClass ?? 'PXEClient';
    return { ...common, stage: 'script', transport: 'http', file: `${base(ctx.httpBaseUrl)}/${IPXE_SCRIPT}`, vendorClass };
  }

  let loader: string | undefined;
  switch (client.firmware) {
    case 'bios':
      loader = BIOS_LOADER;
      break;
    case 'uefi-x64':
      loader = ctx.loaderFor(client.mac)?.uefiLoader ?? DEFAULT_UEFI_LOADER;
      break;
    case 'uefi-arm64':
      loader = ARM64_LOADER;
      break;
    case 'uefi-ia32':
    case undefined:
      // No 32-bit UEFI iPXE is shipped, and guessing a binary for an unknown architecture only produces a crash.
      loader = undefined;
      break;
  }
  if (loader === undefined) {
    const what = client.archCode === undefined ? 'no architecture given' : `architecture ${client.archCode}`;
    return { kind: 'ignore', reason: 'unsupported-arch', detail: `${what} (${client.archSource ?? 'none'})` };
  }
  if (client.http) {
    return { ...common, stage: 'loader', transport: 'http', file: `${base(ctx.httpBaseUrl)}/ipxe/${loader}`, vendorClass: 'HTTPClient' };
  }
  return { ...common, stage: 'loader', transport: 'tftp', file: loader, vendorClass: 'PXEClient' };
}
