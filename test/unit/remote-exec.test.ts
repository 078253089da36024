import { describe, expect, it } from 'vitest';
import { RackseedError } from '../../server/model/errors.js';
import type { ResolvedNode } from '../../server/model/inventory.js';
import { EXEC_OUTPUT_LIMIT, execOnNodes } from '../../server/services/remote-exec.js';
import type { Transport } from '../../server/state/types.js';

const node = (name: string) => ({ name }) as ResolvedNode;

/** A transport answering `exec` with `answer` (failure injection; the real SSH runs in test/integration/state-cli.test.ts). */
function transportAnswering(answer: (target: string) => Promise<{ code: number; stdout: string; stderr: string }>): (n: ResolvedNode) => Promise<Transport> {
  return async (n) => {
    if (n.name === 'nopin') throw new RackseedError('SSH_HOST_KEY_UNKNOWN', 'nopin has no pinned host key');
    return {
      target: n.name,
      exec: () => answer(n.name),
      readFile: async () => undefined,
      writeFile: async () => undefined,
      close: async () => undefined,
    };
  };
}

describe('execOnNodes', () => {
  it('answers every node in input order, whatever finished first, and one that cannot be reached fails alone', async () => {
    const seen: string[] = [];
    const outcomes = await execOnNodes(
      [node('slow'), node('nopin'), node('fast')],
      'true',
      { concurrency: 3, timeoutMs: 5_000, connectTimeoutMs: 1_000 },
      transportAnswering(async (t) => {
        if (t === 'slow') await new Promise((r) => setTimeout(r, 50));
        return { code: t === 'fast' ? 0 : 2, stdout: `${t}\n`, stderr: '' };
      }),
      (o) => seen.push(o.node),
    );
    expect(outcomes.map((o) => [o.node, o.ran, o.code ?? null, o.errorCode ?? null])).toEqual([
      ['slow', true, 2, null],
      ['nopin', false, null, 'SSH_HOST_KEY_UNKNOWN'],
      ['fast', true, 0, null],
    ]);
    expect(outcomes[1]?.error).toBe('nopin has no pinned host key');
    expect(seen.indexOf('fast')).toBeLessThan(seen.indexOf('slow'));
  });

  it('cuts each stream at the limit on a character boundary and says so', async () => {
    // Three-byte characters: the limit falls inside one of them.
    const big = '€'.repeat(EXEC_OUTPUT_LIMIT);
    const [o] = await execOnNodes([node('n1')], 'x', { concurrency: 1, timeoutMs: 5_000, connectTimeoutMs: 1_000 }, transportAnswering(async () => ({ code: 0, stdout: big, stderr: 'small' })));
    expect(o?.truncated).toBe(true);
    expect(Buffer.byteLength(o!.stdout)).toBeLessThanOrEqual(EXEC_OUTPUT_LIMIT);
    expect(o!.stdout).toBe('€'.repeat(Math.floor(EXEC_OUTPUT_LIMIT / 3)));
    expect(o!.stderr).toBe('small');
  });

  it('a transport that never answers is abandoned at the backstop deadline, as not run', async () => {
    const [o] = await execOnNodes([node('hung')], 'x', { concurrency: 1, timeoutMs: 10, connectTimeoutMs: 10, graceMs: 10 }, transportAnswering(() => new Promise(() => undefined)));
    expect(o).toMatchObject({ node: 'hung', ran: false, errorCode: 'STATE_TIMEOUT' });
  });
});
