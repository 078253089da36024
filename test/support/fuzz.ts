/**
 * Seeded generators of hostile DHCP datagrams, shared by the codec fuzz test and the live-listener fuzz.
 */

/** mulberry32: tiny, seeded, good enough to make failures reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Offsets of the length bytes of the main-area options: the bytes a hostile client would lie in. */
function lengthOffsets(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 240; i + 1 < b.length; ) {
    const code = b[i]!;
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255) break;
    out.push(i + 1);
    i += 2 + b[i + 1]!;
  }
  return out;
}

/** Random bytes; half of them dressed as DHCP so the option parser, not the cookie check, gets the noise. */
export function randomDatagram(rand: () => number): Uint8Array {
  const len = Math.floor(rand() * 700);
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = Math.floor(rand() * 256);
  if (rand() < 0.5 && len >= 240) {
    b[0] = 1 + Math.floor(rand() * 2);
    b[2] = Math.floor(rand() * 17);
    b.set([99, 130, 83, 99], 236);
  }
  return b;
}

/** A captured packet with one to three mutations: bit flips, truncation, lying lengths, junk, overload. */
export function mutatedDatagram(rand: () => number, original: Uint8Array): Uint8Array {
  const int = (n: number): number => Math.floor(rand() * n);
  let b = Uint8Array.from(original);
  for (let m = 1 + int(3); m > 0; m--) {
    switch (int(6)) {
      case 0: // bit flip anywhere
        if (b.length > 0) b[int(b.length)]! ^= 1 << int(8);
        break;
      case 1: // truncation
        b = b.slice(0, int(b.length + 1));
        break;
      case 2: {
        const offs = lengthOffsets(b);
        if (offs.length > 0) b[offs[int(offs.length)]!] = int(256);
        break;
      }
      case 3: {
        const extra = Uint8Array.from({ length: 1 + int(64) }, () => int(256));
        const grown = new Uint8Array(b.length + extra.length);
        grown.set(b);
        grown.set(extra, b.length);
        b = grown;
        break;
      }
      case 4: // option overload (52) with any value at the head of the options
        if (b.length >= 243) b.set([52, 1, int(5)], 240);
        break;
      default: // a random byte in the options area
        if (b.length > 240) b[240 + int(b.length - 240)] = int(256);
    }
  }
  return b;
}
