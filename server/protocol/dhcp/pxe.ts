import { fromLatin1, ipv4FromBytes, latin1, parseIpv4, readU16, u16 } from './bytes.js';
import { getOption, Opt } from './options.js';
import type { DhcpPacket, Ipv4 } from './packet.js';
import { encodeSubOptions, parseSubOptions, type SubOption } from './suboptions.js';

/**
 * Option 43 as the PXE 2.1 specification uses it when option 60 is "PXEClient". Only the sub-options a
 * proxyDHCP server speaks are typed; the rest stay in `subOptions`.
 */

export const PxeSub = {
  discoveryControl: 6,
  bootServers: 8,
  bootMenu: 9,
  menuPrompt: 10,
  bootItem: 71,
} as const;

/** Bits of sub-option 6 (PXE 2.1 table 2-1). */
export const Discovery = {
  noBroadcast: 1,
  noMulticast: 2,
  onlyListedServers: 4,
  /** Use the boot file name and siaddr of this reply directly: no boot server discovery at all. */
  useBootFile: 8,
} as const;

export interface PxeBootServer {
  readonly type: number;
  readonly addresses: readonly Ipv4[];
}
export interface PxeMenuItem {
  readonly type: number;
  readonly description: string;
}
export interface PxeMenuPrompt {
  readonly timeout: number;
  readonly prompt: string;
}
export interface PxeBootItem {
  readonly type: number;
  readonly layer: number;
}

export interface PxeVendorOptions {
  readonly subOptions: readonly SubOption[];
  readonly discoveryControl?: number;
  readonly bootServers?: readonly PxeBootServer[];
  readonly bootMenu?: readonly PxeMenuItem[];
  readonly menuPrompt?: PxeMenuPrompt;
  readonly bootItem?: PxeBootItem;
}

function parseBootServers(d: Uint8Array): PxeBootServer[] | undefined {
  const out: PxeBootServer[] = [];
  let i = 0;
  while (i < d.length) {
    if (i + 3 > d.length) return undefined;
    const type = readU16(d, i);
    const count = d[i + 2]!;
    if (i + 3 + count * 4 > d.length) return undefined;
    const addresses: Ipv4[] = [];
    for (let k = 0; k < count; k++) addresses.push(ipv4FromBytes(d, i + 3 + k * 4));
    out.push({ type, addresses });
    i += 3 + count * 4;
  }
  return out;
}

function parseBootMenu(d: Uint8Array): PxeMenuItem[] | undefined {
  const out: PxeMenuItem[] = [];
  let i = 0;
  while (i < d.length) {
    if (i + 3 > d.length) return undefined;
    const len = d[i + 2]!;
    if (i + 3 + len > d.length) return undefined;
    out.push({ type: readU16(d, i), description: latin1(d.subarray(i + 3, i + 3 + len)) });
    i += 3 + len;
  }
  return out;
}

export function parsePxeVendorOptions(data: Uint8Array): PxeVendorOptions | undefined {
  const subOptions = parseSubOptions(data, true);
  if (!subOptions) return undefined;
  const find = (code: number): Uint8Array | undefined => subOptions.find((s) => s.code === code)?.data;
  const result: {
    -readonly [K in keyof PxeVendorOptions]: PxeVendorOptions[K];
  } = { subOptions };
  const dc = find(PxeSub.discoveryControl);
  if (dc?.length === 1) result.discoveryControl = dc[0]!;
  const bs = find(PxeSub.bootServers);
  if (bs) result.bootServers = parseBootServers(bs);
  const bm = find(PxeSub.bootMenu);
  if (bm) result.bootMenu = parseBootMenu(bm);
  const mp = find(PxeSub.menuPrompt);
  if (mp && mp.length >= 1) result.menuPrompt = { timeout: mp[0]!, prompt: latin1(mp.subarray(1)) };
  const bi = find(PxeSub.bootItem);
  if (bi?.length === 4) result.bootItem = { type: readU16(bi, 0), layer: readU16(bi, 2) };
  return result;
}

export function pxeVendorOptions(p: DhcpPacket): PxeVendorOptions | undefined {
  const d = getOption(p, Opt.vendorSpecific);
  return d && parsePxeVendorOptions(d);
}

export interface PxeVendorSpec {
  readonly discoveryControl?: number;
  readonly bootServers?: readonly PxeBootServer[];
  readonly bootMenu?: readonly PxeMenuItem[];
  readonly menuPrompt?: PxeMenuPrompt;
  readonly bootItem?: PxeBootItem;
}

/** Encodes in sub-option code order, terminated by 255 as PXE ROMs expect. */
export function encodePxeVendorOptions(spec: PxeVendorSpec): Uint8Array {
  const subs: SubOption[] = [];
  if (spec.discoveryControl !== undefined) subs.push({ code: PxeSub.discoveryControl, data: Uint8Array.of(spec.discoveryControl) });
  if (spec.bootServers) {
    const parts: number[] = [];
    for (const s of spec.bootServers) {
      parts.push(...u16(s.type), s.addresses.length);
      for (const a of s.addresses) parts.push(...(parseIpv4(a) ?? [0, 0, 0, 0]));
    }
    subs.push({ code: PxeSub.bootServers, data: Uint8Array.from(parts) });
  }
  if (spec.bootMenu) {
    const parts: number[] = [];
    for (const m of spec.bootMenu) {
      const text = fromLatin1(m.description);
      parts.push(...u16(m.type), text.length, ...text);
    }
    subs.push({ code: PxeSub.bootMenu, data: Uint8Array.from(parts) });
  }
  if (spec.menuPrompt) {
    subs.push({ code: PxeSub.menuPrompt, data: Uint8Array.of(spec.menuPrompt.timeout, ...fromLatin1(spec.menuPrompt.prompt)) });
  }
  if (spec.bootItem) {
    subs.push({ code: PxeSub.bootItem, data: Uint8Array.of(...u16(spec.bootItem.type), ...u16(spec.bootItem.layer)) });
  }
  return encodeSubOptions(subs, true);
}
