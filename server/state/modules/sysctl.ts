import { z } from 'zod';
import { RackseedError } from '../../model/errors.js';

import type { CheckOutcome, StateFunction } from '../types.js';
import { absolutePath, argsSchema, scalarText, word } from './args.js';
import { applied, defineFunction, failed, inSync, wouldChange, type Call } from './define.js';
import { parentOf } from './file-attrs.js';
import { failureText, probe, run, section } from './run.js';
import { shellQuote } from './shell.js';

/**
 * sysctl.present: the running value (`sysctl -n`) and its persistence (a `key = value` line in a sysctl.d file),
 * both read in one probe. `apply_runtime: false` persists only: inside a container or chroot `sysctl -w` fails for
 * keys that are not namespaced, and the file is what the next boot reads.
 */

export const DEFAULT_SYSCTL_CONFIG = '/etc/sysctl.d/99-rackseed.conf';

const schema = argsSchema({
  value: scalarText,
  config: absolutePath.optional(),
  apply_runtime: z.boolean().optional(),
});
type Args = z.output<typeof schema>;

const sysctlKey = word('sysctl key', /^[A-Za-z0-9_][A-Za-z0-9_.\/*:@-]*$/);

/** Keys may be written with dots or slashes; values compare with runs of whitespace as one space (tcp_rmem). */
const normalizeKey = (key: string) => key.replace(/\//g, '.');
const normalizeValue = (value: string) => value.trim().split(/\s+/).join(' ');

/** The value a sysctl.d file sets for a key (the last assignment wins, as systemd-sysctl reads it). */
export function configuredValue(text: string, key: string): string | undefined {
  let found: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^\s*-?([^#;=\s][^=]*?)\s*=\s*(.*?)\s*$/.exec(line);
    if (m && normalizeKey(m[1]!) === normalizeKey(key)) found = normalizeValue(m[2]!);
  }
  return found;
}

/** The file with the key set to value: its first assignment replaced, later ones dropped, or a line appended. */
export function withValue(text: string, key: string, value: string): string {
  const out: string[] = [];
  let written = false;
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  for (const line of lines) {
    const m = /^\s*-?([^#;=\s][^=]*?)\s*=/.exec(line);
    if (m && normalizeKey(m[1]!) === normalizeKey(key)) {
      if (!written) out.push(`${key} = ${value}`);
      written = true;
    } else {
      out.push(line);
    }
  }
  if (!written) out.push(`${key} = ${value}`);
  return `${out.join('\n')}\n`;
}

interface SysctlPlan {
  runtime?: string;
  runtimeOk: boolean;
  fileText: string | undefined;
  fileOk: boolean;
}

const plans = new WeakMap<CheckOutcome, SysctlPlan>();

async function plan(call: Call<Args>): Promise<SysctlPlan> {
  const config = call.args.config ?? DEFAULT_SYSCTL_CONFIG;
  const wanted = normalizeValue(call.args.value);
  const runtimeWanted = call.args.apply_runtime !== false;
  // systemd-sysctl expands a glob in a sysctl.d file at boot; sysctl(8) reads and writes no globs, so the runtime
  // value could never be seen in place and every run would say it changes.
  if (runtimeWanted && call.name.includes('*')) {
    throw new RackseedError('STATE_MODULE_FAILED', `sysctl cannot read or set ${call.name} at runtime (a glob): set apply_runtime: false to persist it in ${config}, which systemd-sysctl expands at boot`);
  }
  const parts: Array<[string, string]> = [['config', `cat -- ${shellQuote(config)} 2>/dev/null`]];
  if (runtimeWanted) parts.unshift(['runtime', `sysctl -n -- ${shellQuote(call.name)}`]);
  const sections = await probe(call.ctx, parts);
  const file = section(sections, 'config');
  const fileText = file.code === 0 ? file.out : undefined;
  const result: SysctlPlan = { fileText, fileOk: configuredValue(fileText ?? '', call.name) === wanted, runtimeOk: true };
  if (runtimeWanted) {
    const runtime = section(sections, 'runtime');
    result.runtimeOk = runtime.code === 0 && normalizeValue(runtime.out) === wanted;
    if (runtime.code === 0) result.runtime = normalizeValue(runtime.out);
  }
  return result;
}

export const sysctlPresent: StateFunction = defineFunction({
  schema,
  checkName: (name) => {
    const parsed = sysctlKey.safeParse(name);
    return parsed.success ? undefined : (parsed.error.issues[0]?.message ?? 'invalid sysctl key');
  },
  async check(call) {
    const p = await plan(call);
    const config = call.args.config ?? DEFAULT_SYSCTL_CONFIG;
    if (p.runtimeOk && p.fileOk) return inSync(`Sysctl ${call.name} is ${normalizeValue(call.args.value)}`);
    const what = [!p.runtimeOk ? `set (now ${p.runtime ?? 'unknown key'})` : '', !p.fileOk ? `persisted in ${config}` : ''].filter(Boolean);
    const outcome = wouldChange({ [call.name]: normalizeValue(call.args.value) }, `Sysctl ${call.name} would be ${what.join(' and ')}`);
    plans.set(outcome, p);
    return outcome;
  },
  async apply(call, checked) {
    const p = plans.get(checked) ?? (await plan(call));
    const config = call.args.config ?? DEFAULT_SYSCTL_CONFIG;
    const value = normalizeValue(call.args.value);
    if (!p.fileOk) {
      if (p.fileText === undefined) {
        const made = await run(call.ctx, `mkdir -p -- ${shellQuote(parentOf(config))}`);
        if (made.code !== 0) return failed(`Creating ${parentOf(config)} failed (${failureText(made)})`);
      }
      await call.ctx.transport.writeFile(config, withValue(p.fileText ?? '', call.name, value), { mode: '0644' });
    }
    if (!p.runtimeOk) {
      const result = await run(call.ctx, `sysctl -q -w -- ${shellQuote(`${call.name}=${value}`)}`);
      if (result.code !== 0) {
        const note = p.fileOk ? '' : ` (persisted in ${config}; set apply_runtime: false where the kernel value cannot be set, e.g. in a container)`;
        return failed(`sysctl -w ${call.name} failed (${failureText(result)})${note}`, p.fileOk ? {} : { [call.name]: value, persisted: config });
      }
    }
    return applied({ [call.name]: value }, `Sysctl ${call.name} set to ${value}`);
  },
});
