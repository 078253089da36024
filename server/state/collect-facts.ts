import { RackseedError } from '../model/errors.js';
import { FACTS_SCRIPT, parseFacts } from './facts.js';
import type { NodeFacts, Transport } from './types.js';

/** Collects a node's facts in one command over its transport (at the start of a run, before rendering). */
export async function collectFacts(transport: Transport, timeoutMs = 30_000): Promise<NodeFacts> {
  const r = await transport.exec(FACTS_SCRIPT, { timeoutMs });
  if (!r.stdout.includes('@@rackseed-facts end@@')) {
    // The script always ends with this section: anything else means it never ran to its end.
    throw new RackseedError('STATE_TRANSPORT', `${transport.target}: fact collection failed (exit ${r.code}): ${r.stderr.trim().slice(0, 500)}`, {
      target: transport.target,
      code: r.code,
      stderr: r.stderr,
    });
  }
  return parseFacts(r.stdout);
}
