import { describe, expect, it } from 'vitest';
import { decode, encode } from '../../../server/protocol/dhcp/codec.js';
import { dumpPacket } from '../../../server/protocol/dhcp/dump.js';
import { fixtureBytes, fixtureDump, fixtureNames } from '../../fixtures/dhcp/load.js';
import { SYNTHETIC } from '../../fixtures/dhcp/synthetic.js';

// Regenerate with `npx tsx test/support/capture-dhcp.ts` (captures) or `... --dumps-only` (dumps only).
const names = fixtureNames();

describe('DHCP golden fixtures', () => {
  it('has captures from every real client, both directions, plus the synthetic ones', () => {
    for (const client of ['dhclient', 'udhcpc', 'perfdhcp', 'ipxe-bios', 'ipxe-uefi']) {
      expect(names).toContain(`${client}-discover`);
      expect(names).toContain(`${client}-request`);
      expect(names).toContain(`kea-offer-to-${client}`);
    }
    for (const name of Object.keys(SYNTHETIC)) expect(names).toContain(name);
  });

  describe.each(names)('%s', (name) => {
    const bytes = fixtureBytes(name);
    const r = decode(bytes);

    it('decodes', () => {
      expect(r.ok ? 'ok' : r.error).toBe('ok');
    });

    it('dumps exactly as the golden file', () => {
      if (!r.ok) throw new Error(r.error.message);
      expect(dumpPacket(r.packet)).toBe(fixtureDump(name));
    });

    it('re-encodes byte-identically', () => {
      if (!r.ok) throw new Error(r.error.message);
      expect(Buffer.from(encode(r.packet)).equals(Buffer.from(bytes))).toBe(true);
    });
  });

  it.each(Object.entries(SYNTHETIC))('the builder still produces %s byte for byte', (name, make) => {
    expect(Buffer.from(make()).toString('hex')).toBe(Buffer.from(fixtureBytes(name)).toString('hex'));
  });
});
