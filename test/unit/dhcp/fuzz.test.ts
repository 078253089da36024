import { describe, expect, it } from 'vitest';
import { decode, encode, type DhcpDecodeErrorCode } from '../../../server/protocol/dhcp/codec.js';
import { decideBoot, type BootContext } from '../../../server/protocol/dhcp/decision.js';
import { dumpPacket } from '../../../server/protocol/dhcp/dump.js';
import { fixtureBytes, fixtureNames } from '../../fixtures/dhcp/load.js';
import { mutatedDatagram, prng, randomDatagram } from '../../support/fuzz.js';

const CODES: ReadonlySet<DhcpDecodeErrorCode> = new Set(['TOO_SHORT', 'BAD_MAGIC', 'BAD_OP', 'BAD_HLEN', 'TRUNCATED_OPTION', 'BAD_OVERLOAD']);
const ctx: BootContext = { serverIp: '10.0.0.2', httpBaseUrl: 'http://10.0.0.2', loaderFor: () => undefined };

interface Tally {
  ok: number;
  errors: Map<string, number>;
}

/** The property: decode never throws, errors are typed, and anything accepted re-encodes to the same bytes. */
function check(bytes: Uint8Array, tally: Tally, deep: boolean): void {
  const r = decode(bytes);
  if (!r.ok) {
    if (!CODES.has(r.error.code)) throw new Error(`untyped error ${String(r.error.code)}`);
    tally.errors.set(r.error.code, (tally.errors.get(r.error.code) ?? 0) + 1);
    return;
  }
  tally.ok++;
  const again = encode(r.packet);
  if (again.length !== bytes.length || !again.every((x, i) => x === bytes[i])) {
    throw new Error(`round trip differs for ${Buffer.from(bytes).toString('hex')}`);
  }
  decideBoot(r.packet, ctx);
  if (deep) dumpPacket(r.packet);
}

describe('decode fuzz (seeded)', () => {
  it('100,000 random buffers', () => {
    const rand = prng(0x5eed0001);
    const tally: Tally = { ok: 0, errors: new Map() };
    for (let n = 0; n < 100_000; n++) {
      check(randomDatagram(rand), tally, n % 10 === 0);
    }
    expect(tally.ok + [...tally.errors.values()].reduce((a, b) => a + b, 0)).toBe(100_000);
    expect(tally.errors.get('TRUNCATED_OPTION')).toBeGreaterThan(0);
  });

  it('100,000 mutated copies of the captured packets', () => {
    const rand = prng(0x5eed0002);
    const seeds = fixtureNames().map(fixtureBytes);
    const tally: Tally = { ok: 0, errors: new Map() };
    for (let n = 0; n < 100_000; n++) {
      check(mutatedDatagram(rand, seeds[n % seeds.length]!), tally, n % 10 === 0);
    }
    expect(tally.ok).toBeGreaterThan(10_000);
    expect(tally.errors.size).toBeGreaterThan(3);
  });
});
