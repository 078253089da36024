import { describe, expect, it } from 'vitest';
import { oneLineFromNode, printableText, wellFormed } from '../../server/util/printable.js';

describe('node-supplied text', () => {
  it.each([
    ['plain', 'disk vanished', 'disk vanished'],
    ['terminal title and clear screen', 'ok\u001b]0;owned\u0007\u001b[2J', 'ok ]0;owned  [2J'],
    ['newlines and tabs', 'line1\nline2\tend\r', 'line1 line2 end '],
    ['C1 controls and DEL', 'a\u009bb\u007fc', 'a b c'],
    ['a lone surrogate', 'cut \uD83D', 'cut \uFFFD'],
  ])('one line to store: %s', (_what, input, stored) => {
    expect(oneLineFromNode(input, 500)).toBe(stored);
  });

  it('cuts at a code point, never inside an emoji', () => {
    const text = `ab${'\u{1F600}'.repeat(3)}`;
    expect(oneLineFromNode(text, 3)).toBe('ab\u{1F600}');
    expect(wellFormed(oneLineFromNode(text, 3))).toBe(oneLineFromNode(text, 3));
  });

  it('shows controls on a terminal as escapes, keeping newlines and tabs', () => {
    expect(printableText('ready\u001b[1;32m\r\n\tx\u0007')).toBe('ready\\u001b[1;32m\\u000d\n\tx\\u0007');
    expect(printableText('gpu01  ready  ✓ 日本')).toBe('gpu01  ready  ✓ 日本');
  });
});

describe('CLI output', () => {
  it('escapes controls in text output (node reasons reach it), and leaves --json output to JSON', async () => {
    const { clientContext } = await import('../../server/cli/context.js');
    let text = '';
    clientContext({ config: '/nonexistent.yaml', server: 'http://127.0.0.1:1', token: 't' }, (s) => (text += s)).out.write('reason  ok\u001b]0;owned\u0007\n');
    expect(text).toBe('reason  ok\\u001b]0;owned\\u0007\n');
    let json = '';
    clientContext({ config: '/nonexistent.yaml', server: 'http://127.0.0.1:1', token: 't', json: true }, (s) => (json += s)).out.write('{"a":"\\u001b"}\n');
    expect(json).toBe('{"a":"\\u001b"}\n');
  });
});
