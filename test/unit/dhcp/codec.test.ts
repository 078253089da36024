import { describe, expect, it } from 'vitest';
import { isRackseedError } from '../../../server/model/errors.js';
import { BOOTP_MIN_LEN, buildPacket, optionOrder } from '../../../server/protocol/dhcp/builder.js';
import { decode, encode, type DhcpDecodeErrorCode } from '../../../server/protocol/dhcp/codec.js';
import { getOption, MessageType, Opt } from '../../../server/protocol/dhcp/options.js';
import { BOOTREPLY, BOOTREQUEST } from '../../../server/protocol/dhcp/packet.js';
import { fixtureBytes } from '../../fixtures/dhcp/load.js';

const base = fixtureBytes('udhcpc-discover');

/** The udhcpc DISCOVER with its option area replaced. */
function withOptions(opts: number[], patch: (b: Uint8Array) => void = () => {}): Uint8Array {
  const b = new Uint8Array(240 + opts.length);
  b.set(base.subarray(0, 240));
  b.set(opts, 240);
  patch(b);
  return b;
}

describe('decode errors', () => {
  it.each<[string, Uint8Array, DhcpDecodeErrorCode]>([
    ['empty', new Uint8Array(0), 'TOO_SHORT'],
    ['header without cookie', base.subarray(0, 239), 'TOO_SHORT'],
    ['plain BOOTP', withOptions([255], (b) => (b[236] = 0)), 'BAD_MAGIC'],
    ['op 3', withOptions([255], (b) => (b[0] = 3)), 'BAD_OP'],
    ['hlen 17', withOptions([255], (b) => (b[2] = 17)), 'BAD_HLEN'],
    ['length byte missing', withOptions([53]), 'TRUNCATED_OPTION'],
    ['length past the end', withOptions([53, 5, 1]), 'TRUNCATED_OPTION'],
    ['option 52 twice', withOptions([52, 1, 1, 52, 1, 1, 255]), 'BAD_OVERLOAD'],
    ['option 52 value 4', withOptions([52, 1, 4, 255]), 'BAD_OVERLOAD'],
    ['option 52 two bytes', withOptions([52, 2, 1, 1, 255]), 'BAD_OVERLOAD'],
    ['truncated option inside overloaded file', withOptions([52, 1, 1, 255], (b) => b.set([67, 200], 108)), 'TRUNCATED_OPTION'],
    ['option 52 inside overloaded file', withOptions([52, 1, 1, 255], (b) => b.set([52, 1, 1, 255], 108)), 'BAD_OVERLOAD'],
  ])('%s', (_name, bytes, code) => {
    const r = decode(bytes);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe(code);
      expect(r.error.message.length).toBeGreaterThan(0);
    }
  });
});

describe('decode tolerance and exact round trips', () => {
  it.each<[string, Uint8Array]>([
    ['pads before, between and after options', withOptions([0, 0, 53, 1, 1, 0, 61, 2, 1, 2, 255, 0, 0])],
    ['no End option at all', withOptions([53, 1, 1])],
    ['garbage after End', withOptions([53, 1, 1, 255, 1, 2, 3, 0xff])],
    ['hlen 0 and a weird htype', withOptions([53, 1, 1, 255], (b) => ((b[1] = 32), (b[2] = 0)))],
    ['overloaded sname without End', withOptions([52, 1, 2, 53, 1, 1, 255], (b) => b.fill(0, 44, 108).set([12, 62, ...new Array(62).fill(65)], 44))],
  ])('%s', (_name, bytes) => {
    const r = decode(bytes);
    expect(r.ok).toBe(true);
    if (r.ok) expect(Buffer.from(encode(r.packet)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('a pad does not swallow the next byte (the npm dhcp package bug)', () => {
    const r = decode(withOptions([0, 53, 1, 3, 255]));
    expect(r.ok && r.packet.options.map((o) => o.code)).toEqual([0, 53, 255]);
  });

  it('does not alias the input buffer', () => {
    const bytes = withOptions([53, 1, 1, 255]);
    const r = decode(bytes);
    bytes[242] = 9;
    expect(r.ok && getOption(r.packet, 53)?.[0]).toBe(1);
  });

  it('non-Ethernet packets have no MAC', () => {
    const r = decode(withOptions([255], (b) => (b[1] = 6)));
    expect(r.ok && r.packet.mac).toBeUndefined();
  });
});

describe('builder', () => {
  const opts = (entries: [number, number[]][]): Map<number, Uint8Array> => new Map(entries.map(([c, d]) => [c, Uint8Array.from(d)]));

  it('orders 53, 54, ascending, 82 last, End', () => {
    expect(optionOrder([82, 3, 54, 1, 53, 43])).toEqual([53, 54, 1, 3, 43, 82]);
    const p = buildPacket({ op: BOOTREPLY, xid: 1, chaddr: new Uint8Array(6), options: opts([[82, [1, 1, 9]], [3, [1, 2, 3, 4]], [54, [1, 2, 3, 4]], [53, [2]]]) });
    expect(p.options.map((o) => o.code)).toEqual([53, 54, 3, 82, 255]);
  });

  it('pads to the 300-byte BOOTP minimum with zeros after End', () => {
    const bytes = encode(buildPacket({ op: BOOTREPLY, xid: 1, chaddr: new Uint8Array(6), options: opts([[53, [2]]]) }));
    expect(bytes.length).toBe(BOOTP_MIN_LEN);
    expect(bytes.subarray(244).every((b) => b === 0)).toBe(true);
    expect(bytes[243]).toBe(255);
  });

  it('splits an option longer than 255 bytes into consecutive instances (RFC 3396)', () => {
    const long = Array.from({ length: 600 }, (_, i) => i & 0xff);
    const p = buildPacket({ op: BOOTREPLY, xid: 1, chaddr: new Uint8Array(6), maxMessageSize: 1500, options: opts([[53, [2]], [43, long]]) });
    expect(p.options.filter((o) => o.code === 43).map((o) => o.data.length)).toEqual([255, 255, 90]);
    const r = decode(encode(p));
    expect(r.ok && Array.from(getOption(r.packet, 43)!)).toEqual(long);
  });

  it('overloads file, then sname, only when the options exceed the size the client accepts', () => {
    const big = (n: number): number[] => new Array<number>(n).fill(7);
    const fitsMain = buildPacket({ op: BOOTREPLY, xid: 1, chaddr: new Uint8Array(6), options: opts([[53, [2]], [12, big(200)]]) });
    expect(getOption(fitsMain, Opt.overload)).toBeUndefined();
    const needsFile = buildPacket({ op: BOOTREPLY, xid: 1, chaddr: new Uint8Array(6), options: opts([[53, [2]], [12, big(200)], [15, big(120)]]) });
    expect(Array.from(getOption(needsFile, Opt.overload)!)).toEqual([1]);
    const needsBoth = buildPacket({ op: BOOTREPLY, xid: 1, chaddr: new Uint8Array(6), options: opts([[53, [2]], [12, big(250)], [15, big(120)], [17, big(60)]]) });
    expect(Array.from(getOption(needsBoth, Opt.overload)!)).toEqual([3]);
    const bytes = encode(needsBoth);
    expect(bytes.length).toBeLessThanOrEqual(548);
    const r = decode(bytes);
    expect(r.ok && getOption(r.packet, 17)?.length).toBe(60);
    expect(r.ok && r.packet).toEqual(needsBoth);
  });

  it('every option of every layout decodes byte-identical: split pieces only move forward (options, file, sname)', () => {
    // A counting pattern per option, so a scrambled join is seen, not only a wrong length.
    const seq = (n: number, from: number): number[] => Array.from({ length: n }, (_, i) => (from + i) % 256);
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const checked = { layouts: 0, overloaded: 0 };
    for (let round = 0; round < 400; round++) {
      const spec: Array<[number, number[]]> = [[53, [2]], [54, [10, 0, 0, 1]]];
      for (const code of [12, 15, 17, 43, 61, 82]) if (random(3) > 0) spec.push([code, seq(random(round % 4 === 0 ? 600 : 260), code)]);
      const file = random(2) === 0 ? 'undionly.kpxe' : undefined;
      const p = buildPacket({ op: BOOTREPLY, xid: round, chaddr: new Uint8Array(6), ...(file ? { file } : {}), maxMessageSize: 576 + random(200), options: opts(spec) });
      const r = decode(encode(p));
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      for (const [code, data] of spec) expect(Array.from(getOption(r.packet, code) ?? []), `round ${round} option ${code}`).toEqual(data);
      checked.layouts++;
      if (getOption(r.packet, Opt.overload)) checked.overloaded++;
    }
    // The rounds did reach the split-over-areas layouts this is about.
    expect(checked.overloaded).toBeGreaterThan(100);
  });

  it('echoes a long option 82 unchanged when the reply overflows into sname', () => {
    const relay = Array.from({ length: 200 }, (_, i) => i);
    const host = Array.from({ length: 250 }, (_, i) => (100 + i) % 256);
    const p = buildPacket({ op: BOOTREPLY, xid: 1, chaddr: new Uint8Array(6), file: 'undionly.kpxe', options: opts([[53, [2]], [54, [10, 0, 0, 1]], [15, host], [82, relay]]) });
    const r = decode(encode(p));
    expect(r.ok && Array.from(getOption(r.packet, 82)!)).toEqual(relay);
    expect(r.ok && Array.from(getOption(r.packet, 15)!)).toEqual(host);
  });

  it('does not overload a file field that carries a boot file name', () => {
    const p = buildPacket({ op: BOOTREPLY, xid: 1, chaddr: new Uint8Array(6), file: 'undionly.kpxe', options: opts([[53, [2]], [12, new Array<number>(400).fill(1)]]) });
    expect(Array.from(getOption(p, Opt.overload)!)).toEqual([2]);
    expect(Buffer.from(encode(p).subarray(108, 121)).toString()).toBe('undionly.kpxe');
  });

  it('encode refuses impossible layouts with a typed error', () => {
    const p = buildPacket({ op: BOOTREQUEST, xid: 1, chaddr: new Uint8Array(6), options: opts([[MessageType.DISCOVER, [1]]]) });
    const bad = { ...p, options: [{ code: 12, data: new Uint8Array(300), area: 'options' as const }] };
    expect(() => encode(bad)).toThrow();
    try {
      encode({ ...p, options: [{ code: 12, data: Uint8Array.of(1), area: 'file' as const }] });
      expect.unreachable();
    } catch (e) {
      expect(isRackseedError(e) && e.code).toBe('DHCP_ENCODE');
    }
  });
});
