import type { z } from 'zod';
import type { ErrorCode } from '../model/errors.js';
import type { KeyPath, SourceLocator } from './source-locator.js';

function describeIssue(iss: z.core.$ZodIssue): string {
  if (iss.code === 'invalid_type') {
    // zod 4 does not keep the input unless asked to; its message ends with what it received.
    const received = /received (\w+)$/.exec(iss.message)?.[1];
    if (received === 'undefined') return `missing (expected ${iss.expected})`;
    if (received) return `expected ${iss.expected}, got ${received}`;
  }
  return iss.message;
}

/**
 * Runs a schema over one part of a YAML file (config, inventory) and turns its first issue into an error at the right
 * file:line and key path. One precise error beats a list the operator has to decode.
 */
export function parseAt<S extends z.ZodType>(schema: S, value: unknown, path: KeyPath, where: SourceLocator, code: ErrorCode): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const iss = result.error.issues[0]!;
  let at: KeyPath = [...path, ...iss.path];
  if (iss.code === 'unrecognized_keys' && iss.keys[0] !== undefined) at = [...at, iss.keys[0]];
  throw where.error(code, at, describeIssue(iss));
}
