import { describe, expect, it } from 'vitest';
import { CallbackTokens } from '../../server/auth/callback-token.js';
import { NodeTokens } from '../../server/auth/node-token.js';

const KEY = 'k'.repeat(43);

describe('callback tokens', () => {
  const tokens = new CallbackTokens(KEY);

  it('name one node and one purpose, and verify for that purpose only', () => {
    const t = tokens.issue('gpu001', 'booted');
    expect(t).toMatch(/^cb1\.booted\.gpu001\.[A-Za-z0-9_-]{43}$/);
    expect(tokens.verify(t, 'booted')).toEqual({ node: 'gpu001' });
    // Another purpose, spelled into the same node's token, is refused (its signature covers the purpose).
    const [, , node, sig] = t.split('.');
    expect(tokens.verify(['cb1', 'reboot', node, sig].join('.'), 'booted')).toBeUndefined();
  });

  it('are the same on every issue (a reinstall writes the same token), and differ per node', () => {
    expect(tokens.issue('gpu001', 'booted')).toBe(tokens.issue('gpu001', 'booted'));
    expect(tokens.issue('gpu002', 'booted')).not.toBe(tokens.issue('gpu001', 'booted'));
  });

  it('refuse a changed node name or signature, another key, and junk', () => {
    const t = tokens.issue('gpu001', 'booted');
    const [v, p, , sig] = t.split('.');
    expect(tokens.verify([v, p, 'gpu002', sig].join('.'), 'booted')).toBeUndefined();
    expect(tokens.verify(`${t.slice(0, -1)}${t.endsWith('A') ? 'B' : 'A'}`, 'booted')).toBeUndefined();
    expect(new CallbackTokens('other-key-other-key-other-key-other-key-xx').verify(t, 'booted')).toBeUndefined();
    for (const junk of ['', 'cb1', 'cb1.booted.gpu001', `${t}.extra`, 'cb1.booted.bad_name.sig', 'cb1.BOOTED.gpu001.sig']) {
      expect(tokens.verify(junk, 'booted'), junk).toBeUndefined();
    }
  });

  it("are not the installer's node tokens, in either direction, even under the same key", () => {
    const nodeTokens = new NodeTokens(KEY);
    expect(tokens.verify(nodeTokens.issue('gpu001', '52:54:00:00:00:01', 600), 'booted')).toBeUndefined();
    expect(nodeTokens.verify(tokens.issue('gpu001', 'booted'))).toBeUndefined();
  });

  it('refuse to issue for something that is not a node name, and refuse a short key', () => {
    expect(() => tokens.issue('gpu 001', 'booted')).toThrow(/not a node name/);
    expect(() => tokens.issue('a.b', 'booted')).toThrow(/not a node name/);
    expect(() => new CallbackTokens('short')).toThrow(/at least 32/);
  });

  it('are safe as one word of the install plan', () => {
    expect(tokens.issue('n1', 'booted')).toMatch(/^[A-Za-z0-9._-]+$/);
  });
});
