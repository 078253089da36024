import { z } from 'zod';

import { RackseedError } from '../../model/errors.js';
import { strict } from '../../util/strict-object.js';

/**
 * Argument schemas for state functions. A state's args are validated at compile time (messages naming the key) and
 * parsed again when the state runs, so a module never works on an unchecked value.
 */

/** Keys the compiler may leave in args: every function accepts them. */
const ALWAYS_ALLOWED = { name: z.unknown().optional(), names: z.unknown().optional() };

export function argsSchema<T extends z.ZodRawShape>(shape: T) {
  return strict({ ...ALWAYS_ALLOWED, ...shape });
}

function describeIssue(iss: z.core.$ZodIssue): string {
  if (iss.code === 'unrecognized_keys') return iss.message;
  const key = iss.path.map(String).join('.');
  let message = iss.message;
  if (iss.code === 'invalid_type') {
    const received = /received (\w+)$/.exec(iss.message)?.[1];
    if (received === 'undefined') message = `missing (expected ${iss.expected})`;
    else if (received) message = `expected ${iss.expected}, got ${received}`;
  }
  return key === '' ? message : `${key}: ${message}`;
}

export function argProblems(schema: z.ZodType, args: Record<string, unknown>): string[] {
  const parsed = schema.safeParse(args);
  return parsed.success ? [] : parsed.error.issues.map(describeIssue);
}

export function parseArgs<S extends z.ZodType>(schema: S, args: Record<string, unknown>, where: string): z.output<S> {
  const parsed = schema.safeParse(args);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map(describeIssue);
  throw new RackseedError('SLS_INVALID', `${where}: ${problems.join('; ')}`, { problems });
}

// --- Reusable argument types -----------------------------------------------------------------------------------

/** A word passed to a program (package, service, user): never empty, never read as an option, no whitespace. */
export function word(what: string, extra?: RegExp) {
  return z.string().superRefine((s, ctx) => {
    const problem =
      s === ''
        ? `expected a ${what}, got an empty string`
        : s.startsWith('-')
          ? `a ${what} may not start with "-"`
          : /[\s\0]/.test(s)
            ? `a ${what} may not contain whitespace`
            : extra && !extra.test(s)
              ? `not a valid ${what}`
              : undefined;
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });
}

export const PACKAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9+._~-]*(:[A-Za-z0-9_-]+)?$/;
export const ACCOUNT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/;

export const absolutePath = z
  .string()
  .refine((s) => s.startsWith('/'), 'expected an absolute path')
  .refine((s) => !s.includes('\0'), 'a path may not contain NUL');

/** Text that YAML may have parsed as a number (`version: 2.1`, `value: 1`). */
export const scalarText = z.union([z.string(), z.number(), z.boolean()]).transform((v) => (typeof v === 'boolean' ? (v ? '1' : '0') : String(v)));

export const nonNegativeInt = z.union([
  z.number().int().nonnegative(),
  z
    .string()
    .regex(/^\d+$/, 'expected a non-negative integer')
    .transform((s) => Number(s)),
]);

/**
 * An octal mode as Salt accepts it: '0644', '644', or the YAML integer 644 (read as octal digits, as Salt does), and
 * YAML 1.2's 0o644 (the SLS parser keeps that literal as its text). Normalised to four digits.
 */
export function normalizeMode(value: string | number): string | undefined {
  const digits = String(value).replace(/^0o/, '');
  if (!/^[0-7]{1,4}$/.test(digits)) return undefined;
  return digits.padStart(4, '0');
}

export const modeArg = z
  .union([z.string(), z.number().int()])
  .refine((v) => normalizeMode(v) !== undefined, 'expected an octal mode such as 0644')
  .transform((v) => normalizeMode(v)!);

export const stringList = z.array(z.string());

/** A list written either as a YAML list or a comma-separated string. */
export const listOrCsv = z.union([z.array(z.string()), z.string()]).transform((v) =>
  (Array.isArray(v) ? v : v.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== ''),
);
