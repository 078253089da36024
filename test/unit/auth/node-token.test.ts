import { describe, expect, it } from 'vitest';
import { NodeTokens } from '../../../server/auth/node-token.js';

describe('node tokens', () => {
  let now = 1_800_000_000_000;
  const tokens = new NodeTokens('k'.repeat(43), () => now);

  it('name one node and verify until they expire', () => {
    const t = tokens.issue('gpu001', 600);
    expect(t).toMatch(/^v1\.gpu001\.[0-9a-z]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(tokens.verify(t)).toEqual({ node: 'gpu001', expiresAt: now + 600_000 });
    now += 600_000;
    expect(tokens.verify(t)).toBeUndefined();
  });

  it('refuse a token whose node, expiry or signature was changed, or that another key signed', () => {
    const t = tokens.issue('gpu001', 600);
    const [v, , exp, nonce, sig] = t.split('.');
    expect(tokens.verify([v, 'gpu002', exp, nonce, sig].join('.'))).toBeUndefined();
    expect(tokens.verify([v, 'gpu001', 'zzzzzzzz', nonce, sig].join('.'))).toBeUndefined();
    expect(tokens.verify([v, 'gpu001', exp, nonce, `${sig}x`].join('.'))).toBeUndefined();
    expect(new NodeTokens('other-key-other-key-other-key-other-key-xx', () => now).verify(t)).toBeUndefined();
    for (const junk of ['', 'v1', 'a.b.c.d.e', `${t}.extra`]) expect(tokens.verify(junk)).toBeUndefined();
  });

  it('are different for every issue, and safe as a kernel argument', () => {
    const a = tokens.issue('n1', 60);
    expect(tokens.issue('n1', 60)).not.toBe(a);
    expect(a).toMatch(/^[A-Za-z0-9._-]+$/);
  });
});
