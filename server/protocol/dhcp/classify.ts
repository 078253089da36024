import type { Mac } from '../../model/mac.js';
import { archInfo, type Firmware } from './arch.js';
import {
  clientArchitectures,
  clientMachineId,
  hasOption,
  Opt,
  userClass,
  vendorClassId,
  type ClientMachineId,
} from './options.js';
import { BOOTREQUEST, type DhcpPacket } from './packet.js';

/**
 * Step one of the boot chain: is this request from a network-boot client, and which firmware runs it?
 * Answers come only from what the client says about itself (options 60, 77, 93, 97, 175).
 */

export type ArchSource = 'option93' | 'option60' | 'assumed';

export interface NetbootClient {
  readonly mac: Mac;
  /** Option 60's class prefix: PXE ROMs, UEFI PXE and iPXE send PXEClient; UEFI HTTP boot sends HTTPClient. */
  readonly vendorClass: 'PXEClient' | 'HTTPClient' | undefined;
  /** iPXE announces itself with user class "iPXE" (option 77) or its encapsulated options (175). */
  readonly ipxe: boolean;
  /** The architecture type the firmware was derived from, and where it came from. */
  readonly archCode: number | undefined;
  readonly archSource: ArchSource | undefined;
  /** Undefined when the architecture is one this server has no loader for. */
  readonly firmware: Firmware | undefined;
  /** UEFI HTTP boot: the client wants a URL and "HTTPClient" echoed back. */
  readonly http: boolean;
  readonly machineId: ClientMachineId | undefined;
}

export type NotNetbootReason = 'not-a-request' | 'no-mac' | 'not-netboot';

export type Classification =
  | { readonly kind: 'netboot'; readonly client: NetbootClient }
  | { readonly kind: 'other'; readonly reason: NotNetbootReason; readonly detail: string };

const ARCH_IN_CLASS = /:Arch:(\d{5})(?::|$)/;

function vendorPrefix(vc: string | undefined): NetbootClient['vendorClass'] {
  if (vc?.startsWith('PXEClient')) return 'PXEClient';
  if (vc?.startsWith('HTTPClient')) return 'HTTPClient';
  return undefined;
}

function isIpxe(p: DhcpPacket): boolean {
  return (userClass(p)?.classes.includes('iPXE') ?? false) || hasOption(p, Opt.ipxeEncap);
}

/**
 * Option 93 wins (the first architecture this server knows, else the first listed); then the "Arch:NNNNN" field
 * of option 60; a PXEClient with neither predates RFC 4578, and those ROMs were all x86 BIOS.
 */
function architecture(p: DhcpPacket, vc: string | undefined): { code: number; source: ArchSource } | undefined {
  const list = clientArchitectures(p);
  if (list && list.length > 0) {
    return { code: list.find((c) => archInfo(c) !== undefined) ?? list[0]!, source: 'option93' };
  }
  const m = vc ? ARCH_IN_CLASS.exec(vc) : null;
  if (m) return { code: Number(m[1]), source: 'option60' };
  if (vendorPrefix(vc) === 'PXEClient') return { code: 0, source: 'assumed' };
  return undefined;
}

export function classify(p: DhcpPacket): Classification {
  if (p.op !== BOOTREQUEST) return { kind: 'other', reason: 'not-a-request', detail: `op ${p.op}` };
  if (!p.mac) return { kind: 'other', reason: 'no-mac', detail: `htype ${p.htype} hlen ${p.hlen} is not Ethernet` };
  const vc = vendorClassId(p);
  const vendorClass = vendorPrefix(vc);
  const ipxe = isIpxe(p);
  if (!vendorClass && !ipxe) {
    return { kind: 'other', reason: 'not-netboot', detail: vc === undefined ? 'no option 60' : `option 60 "${vc}"` };
  }
  const arch = architecture(p, vc);
  const info = arch && archInfo(arch.code);
  return {
    kind: 'netboot',
    client: {
      mac: p.mac,
      vendorClass,
      ipxe,
      archCode: arch?.code,
      archSource: arch?.source,
      firmware: info?.firmware,
      http: info?.http ?? vendorClass === 'HTTPClient',
      machineId: clientMachineId(p),
    },
  };
}
