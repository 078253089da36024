import { z } from 'zod';

import type { StateFunction } from '../types.js';
import { absolutePath, ACCOUNT_NAME, argsSchema, scalarText, word } from './args.js';
import { applied, defineFunction, failed, wouldChange } from './define.js';
import { run } from './run.js';
import { shellQuote } from './shell.js';

/**
 * cmd.run: runs `name` with /bin/sh. It always "would change", with `{cmd: name}` as the predicted change
 * (unless/onlyif/creates are the runner's, not ours);
 * the result is the exit status. Changes carry retcode, stdout and stderr, each bounded.
 */

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Salt accepts `env` as a map or as a list of one-key maps. */
const envArg = z
  .union([z.record(z.string(), scalarText), z.array(z.record(z.string(), scalarText))])
  .transform((v) => (Array.isArray(v) ? Object.assign({}, ...v) : v) as Record<string, string>)
  .refine((env) => Object.keys(env).every((k) => ENV_NAME.test(k)), 'variable names must match [A-Za-z_][A-Za-z0-9_]*');

const schema = argsSchema({
  cwd: absolutePath.optional(),
  env: envArg.optional(),
  runas: word('user name', ACCOUNT_NAME).optional(),
  shell: absolutePath.optional(),
  /** Seconds; overrides the run's per-command timeout for this command. */
  timeout: z.number().positive().optional(),
  stateful: z.never({ error: 'stateful is not supported' }).optional(),
});

const MAX_OUTPUT = 8192;

/** Keeps the head and the tail of a long output: the error is usually at the end. */
export function bounded(text: string, max = MAX_OUTPUT): string {
  if (text.length <= max) return text;
  const half = Math.floor(max / 2);
  return `${text.slice(0, half)}\n... (${text.length - 2 * half} characters left out) ...\n${text.slice(text.length - half)}`;
}

/** Where and as whom a cmd state runs: also what its onlyif/unless commands run with (as in Salt). */
export interface CommandPlace {
  cwd?: string | undefined;
  runas?: string | undefined;
  env?: Record<string, string> | undefined;
  shell?: string | undefined;
}

/** The place of a compiled cmd state from its raw arguments (before validation: wrong types are ignored here). */
export function commandPlaceOf(args: Readonly<Record<string, unknown>>): CommandPlace {
  const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  // The command's own parse: Salt's list form and booleans (1/0) must reach the guards as they reach the command.
  const parsed = args.env === undefined ? undefined : envArg.safeParse(args.env);
  const env = parsed?.success ? parsed.data : undefined;
  return { cwd: text(args.cwd), runas: text(args.runas), env, shell: text(args.shell) };
}

export function buildCommand(command: string, args: CommandPlace): string {
  const parts: string[] = [];
  if (args.cwd !== undefined) parts.push(`cd -- ${shellQuote(args.cwd)} &&`);
  if (args.runas !== undefined) parts.push(`runuser -u ${shellQuote(args.runas)} --`);
  const env = Object.entries(args.env ?? {});
  if (env.length > 0) parts.push('env', ...env.map(([k, v]) => shellQuote(`${k}=${v}`)));
  parts.push(shellQuote(args.shell ?? '/bin/sh'), '-c', shellQuote(command));
  return parts.join(' ');
}

export const cmdRun: StateFunction = defineFunction({
  schema,
  checkName: (name) => (name.trim() === '' ? 'expected a command' : undefined),
  async check(call) {
    // A change, as Salt 3006 reports it (saltstack/salt#64150): the dry run must predict the onchanges and watch
    // requisites on this command that apply will trigger.
    return wouldChange({ cmd: call.name }, `Command "${call.name}" would have been executed`);
  },
  async apply(call) {
    const timeoutMs = call.args.timeout === undefined ? undefined : call.args.timeout * 1000;
    const result = await run(call.ctx, buildCommand(call.name, call.args), timeoutMs);
    const changes = { retcode: result.code, stdout: bounded(result.stdout.replace(/\n$/, '')), stderr: bounded(result.stderr.replace(/\n$/, '')) };
    if (result.code !== 0) return failed(`Command "${call.name}" failed with exit code ${result.code}`, changes);
    return applied(changes, `Command "${call.name}" run`);
  },
});
