import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NodeTokens, stillNamesMachine } from '../../../server/auth/node-token.js';
import { parseInventory } from '../../../server/inventory/index.js';
import { FILE, withNodes } from '../../fixtures/inventory/inventories.js';

const KEY = 'k'.repeat(43);
const MAC = '52:54:00:00:01:01';

describe('node tokens', () => {
  let now = 1_800_000_000_000;
  const tokens = new NodeTokens(KEY, () => now);

  it('name one node and the machine it was issued to, and verify until they expire', () => {
    const t = tokens.issue('gpu001', '52-54-00-00-01-01', 600);
    expect(t).toMatch(/^v2\.gpu001\.525400000101\.[0-9a-z]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(tokens.verify(t)).toEqual({ node: 'gpu001', mac: MAC, expiresAt: now + 600_000, nonce: t.split('.')[4] });
    now += 600_000;
    expect(tokens.verify(t)).toBeUndefined();
  });

  it('refuse a token whose node, MAC, expiry or signature was changed, or that another key signed', () => {
    const t = tokens.issue('gpu001', MAC, 600);
    const [v, , mac, exp, nonce, sig] = t.split('.');
    expect(tokens.verify([v, 'gpu002', mac, exp, nonce, sig].join('.'))).toBeUndefined();
    expect(tokens.verify([v, 'gpu001', '525400000102', exp, nonce, sig].join('.'))).toBeUndefined();
    expect(tokens.verify([v, 'gpu001', mac, 'zzzzzzzz', nonce, sig].join('.'))).toBeUndefined();
    expect(tokens.verify([v, 'gpu001', mac, exp, nonce, `${sig}x`].join('.'))).toBeUndefined();
    // The MAC field dropped: not a v1 token either (its signature covers the MAC).
    expect(tokens.verify(['v1', 'gpu001', exp, nonce, sig].join('.'))).toBeUndefined();
    expect(new NodeTokens('other-key-other-key-other-key-other-key-xx', () => now).verify(t)).toBeUndefined();
    for (const junk of ['', 'v1', 'v2', 'a.b.c.d.e', 'a.b.c.d.e.f', `${t}.extra`]) expect(tokens.verify(junk)).toBeUndefined();
  });

  it('are different for every issue, and safe as a kernel argument', () => {
    const a = tokens.issue('n1', MAC, 60);
    expect(tokens.issue('n1', MAC, 60)).not.toBe(a);
    expect(a).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(() => tokens.issue('n1', 'not-a-mac', 60)).toThrow(/not a MAC address/);
  });

  it('still take a v1 token (no MAC) that a server before v2 issued: an install under way across the upgrade finishes', () => {
    // Exactly what NodeTokens.issue made before v2.
    const body = `v1.gpu001.${Math.ceil((now + 600_000) / 1000).toString(36)}.bm9uY2Vub25jZQ`;
    const v1 = `${body}.${createHmac('sha256', KEY).update(body).digest('base64url')}`;
    expect(tokens.verify(v1)).toEqual({ node: 'gpu001', expiresAt: Math.ceil((now + 600_000) / 1000) * 1000, nonce: 'bm9uY2Vub25jZQ' });
  });
});

describe('stillNamesMachine', () => {
  const tokens = new NodeTokens(KEY);
  const inventory = (entries: string) => parseInventory(withNodes(entries), FILE);
  const gpu001 = (mac: string) => `  - name: gpu001\n    group: head\n    mac: ${mac}\n`;
  const claims = tokens.verify(tokens.issue('gpu001', MAC, 600))!;

  it.each([
    { what: 'the node, declared with the machine the token was issued to', inv: inventory(gpu001(MAC)), ok: true },
    { what: 'the node with that MAC among others', inv: inventory('  - name: gpu001\n    group: head\n    macs: [52:54:00:00:09:09, 52:54:00:00:01:01]\n'), ok: true },
    { what: 'the name declared again for another machine (removed, then added)', inv: inventory(gpu001('52:54:00:00:01:02')), ok: false },
    { what: 'the node removed', inv: inventory(''), ok: false },
    { what: 'the machine declared as another node now', inv: inventory(`  - name: gpu002\n    group: head\n    mac: ${MAC}\n`), ok: false },
  ])('$what: $ok', ({ inv, ok }) => {
    expect(stillNamesMachine(claims, inv)).toBe(ok);
  });

  it('a v1 token (no MAC) is taken on its name alone', () => {
    expect(stillNamesMachine({ node: 'gpu001', expiresAt: 0, nonce: 'n' }, inventory(gpu001('52:54:00:00:01:02')))).toBe(true);
  });
});
