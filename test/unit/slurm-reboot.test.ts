import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../server/inventory/index.js';
import { RackseedError } from '../../server/model/errors.js';
import type { ResolvedNode } from '../../server/model/inventory.js';
import { slurmRebooter } from '../../server/services/slurm-reboot.js';
import { slurmBudgetMs } from '../../server/services/slurm-controller.js';
import { SLURM_NODES_PER_COMMAND } from '../../server/services/slurm-reboot-script.js';
import type { Transport } from '../../server/state/types.js';
import { FILE, GROUPS } from '../fixtures/inventory/inventories.js';

/** Two controllers (head01, head02) and enough compute nodes for three pieces. */
const COUNT = SLURM_NODES_PER_COMMAND * 2 + 10;
const names = Array.from({ length: COUNT }, (_, i) => `gpu${String(i + 1).padStart(3, '0')}`);
const inv = parseInventory(
  `${GROUPS}nodes:\n  - { name: head01, group: head, ip: 10.0.0.1 }\n  - { name: head02, group: head, ip: 10.0.0.2 }\n  - { range: "gpu[001-${String(COUNT).padStart(3, '0')}]", group: gpu, ip: 10.0.1.1 }\n`,
  FILE,
);

/** The node names a script asks about (its `for n in ...` line). */
const asked = (script: string): string[] => [...(/^for n in (.*); do$/m.exec(script)?.[1] ?? '').matchAll(/'([^']+)'/g)].map((m) => m[1]!);

/** Failure injection: each controller answers `ok` for every node, except as `behave` says for its Nth command. */
function controllers(behave: (controller: string, call: number) => 'answer' | 'timeout' | 'refuse' | 'hang'): { transportFor: (n: ResolvedNode) => Promise<Transport>; calls: Array<[string, string[]]> } {
  const calls: Array<[string, string[]]> = [];
  const counts = new Map<string, number>();
  return {
    calls,
    transportFor: async (node) => {
      if (behave(node.name, 0) === 'refuse') throw new RackseedError('STATE_TRANSPORT', `${node.name}: connect ECONNREFUSED`);
      return {
        target: node.name,
        exec: async (script, options) => {
          const call = (counts.get(node.name) ?? 0) + 1;
          counts.set(node.name, call);
          const nodes = asked(script);
          calls.push([node.name, nodes]);
          if (behave(node.name, call) === 'timeout') throw new RackseedError('STATE_TIMEOUT', `${node.name}: command timed out`);
          // A hung slurmctld: the transport gives up at the command's own timeout.
          if (behave(node.name, call) === 'hang') {
            await new Promise((resolve) => setTimeout(resolve, options?.timeoutMs ?? 0));
            throw new RackseedError('STATE_TIMEOUT', `${node.name}: command timed out after ${options?.timeoutMs} ms`);
          }
          return { code: 0, stdout: nodes.map((n) => `ok ${n}\n`).join(''), stderr: '' };
        },
        readFile: async () => undefined,
        writeFile: async () => undefined,
        close: async () => undefined,
      };
    },
  };
}

describe('slurmRebooter', () => {
  it("gives the second controller its chance within the request's budget when the first one hangs", async () => {
    const c = controllers((controller) => (controller === 'head01' ? 'hang' : 'answer'));
    const one = ['gpu001'];
    const answers = await slurmRebooter({ inventory: () => inv, transportFor: c.transportFor, timeoutMs: 200 }).requestReboots(one, AbortSignal.timeout(slurmBudgetMs(inv, one.length, 200)));
    expect(answers).toEqual([{ node: 'gpu001', ok: true }]);
    expect(c.calls.map(([controller]) => controller)).toEqual(['head01', 'head02']);
  });

  it('a node never sent to any controller (the budget ran out first) is reported as not asked, not as maybe taken', async () => {
    const c = controllers(() => 'answer');
    const stopped = new AbortController();
    stopped.abort();
    const [a] = await slurmRebooter({ inventory: () => inv, transportFor: c.transportFor, timeoutMs: 200 }).requestReboots(['gpu001'], stopped.signal);
    expect(a).toEqual({ node: 'gpu001', ok: false, error: 'not asked: no controller could be asked in time (stopped: no answer in time)' });
    expect(c.calls).toEqual([]);
  });

  it('keeps the answers of the pieces that finished and asks the next controller only about the rest', async () => {
    const c = controllers((controller, call) => (controller === 'head01' && call === 2 ? 'timeout' : 'answer'));
    const answers = await slurmRebooter({ inventory: () => inv, transportFor: c.transportFor, timeoutMs: 1_000 }).requestReboots(names, new AbortController().signal);
    expect(answers.every((a) => a.ok)).toBe(true);
    expect(answers.map((a) => a.node)).toEqual(names);
    expect(c.calls.map(([controller, nodes]) => [controller, nodes.length, nodes[0]])).toEqual([
      ['head01', SLURM_NODES_PER_COMMAND, 'gpu001'],
      ['head01', SLURM_NODES_PER_COMMAND, names[SLURM_NODES_PER_COMMAND]],
      // The piece that timed out, and the one after it, on the second controller.
      ['head02', SLURM_NODES_PER_COMMAND, names[SLURM_NODES_PER_COMMAND]],
      ['head02', 10, names[SLURM_NODES_PER_COMMAND * 2]],
    ]);
  });

  it('when no controller answers, the nodes without an answer fail saying Slurm may have taken it, the others keep theirs', async () => {
    const c = controllers((controller, call) => (controller === 'head02' ? 'refuse' : call === 1 ? 'answer' : 'timeout'));
    const answers = await slurmRebooter({ inventory: () => inv, transportFor: c.transportFor, timeoutMs: 1_000 }).requestReboots(names, new AbortController().signal);
    expect(answers.slice(0, SLURM_NODES_PER_COMMAND).every((a) => a.ok)).toBe(true);
    const rest = answers.slice(SLURM_NODES_PER_COMMAND);
    expect(rest.every((a) => !a.ok)).toBe(true);
    expect(rest[0]).toEqual({
      node: names[SLURM_NODES_PER_COMMAND],
      ok: false,
      error: `no complete answer from Slurm (head01: command timed out; head02: connect ECONNREFUSED); it may have taken the request all the same: see scontrol show node ${names[SLURM_NODES_PER_COMMAND]}`,
    });
  });
});
