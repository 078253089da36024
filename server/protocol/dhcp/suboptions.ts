import { RackseedError } from '../../model/errors.js';

/**
 * Encapsulated code/length/value lists: option 43 (PXE vendor options), 82 (relay agent information,
 * RFC 3046) and 175 (iPXE). All three reuse the DHCP option syntax inside one option's data.
 */

export interface SubOption {
  readonly code: number;
  readonly data: Uint8Array;
}

/**
 * Returns undefined when the data is not a well-formed list. With `padEnd`, code 0 is skipped and code 255 stops
 * the list (RFC 2132 section 8.4 allows both in vendor encapsulations); RFC 3046 sub-options have neither.
 */
export function parseSubOptions(data: Uint8Array, padEnd: boolean): SubOption[] | undefined {
  const out: SubOption[] = [];
  let i = 0;
  while (i < data.length) {
    const code = data[i]!;
    if (padEnd && code === 0) {
      i += 1;
      continue;
    }
    if (padEnd && code === 255) return out;
    if (i + 1 >= data.length) return undefined;
    const len = data[i + 1]!;
    if (i + 2 + len > data.length) return undefined;
    out.push({ code, data: data.slice(i + 2, i + 2 + len) });
    i += 2 + len;
  }
  return out;
}

/** Encodes sub-options in the order given; `end` appends the 255 terminator option 43 wants. */
export function encodeSubOptions(subs: readonly SubOption[], end: boolean): Uint8Array {
  let len = end ? 1 : 0;
  for (const s of subs) {
    if (s.data.length > 255) {
      throw new RackseedError('DHCP_ENCODE', `sub-option ${s.code} is ${s.data.length} bytes (max 255)`, { code: s.code });
    }
    len += 2 + s.data.length;
  }
  const out = new Uint8Array(len);
  let at = 0;
  for (const s of subs) {
    out[at] = s.code;
    out[at + 1] = s.data.length;
    out.set(s.data, at + 2);
    at += 2 + s.data.length;
  }
  if (end) out[at] = 255;
  return out;
}
