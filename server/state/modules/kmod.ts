import { z } from 'zod';

import type { CheckOutcome, StateFunction } from '../types.js';
import { argsSchema, word } from './args.js';
import { applied, defineFunction, failed, inSync, wouldChange, type Call } from './define.js';
import { failureText, probe, run, section } from './run.js';
import { shellQuote } from './shell.js';

/**
 * kmod.present: loaded means listed in /proc/modules or present under /sys/module (built into the kernel); with
 * `persist: true` also listed in /etc/modules-load.d/<name>.conf for the next boot. `apply_runtime: false`
 * persists without loading (containers and chroots cannot load modules).
 */

const moduleName = word('kernel module name', /^[A-Za-z0-9_-]+$/);

const schema = argsSchema({ persist: z.boolean().optional(), apply_runtime: z.boolean().optional() });
type Args = z.output<typeof schema>;

export const persistPath = (name: string) => `/etc/modules-load.d/${name}.conf`;
/** The kernel reports modules with underscores whatever the file name uses. */
const kernelName = (name: string) => name.replace(/-/g, '_');

interface KmodPlan {
  load: boolean;
  persist: boolean;
  persistFileExists: boolean;
}

const plans = new WeakMap<CheckOutcome, KmodPlan>();

async function plan(call: Call<Args>): Promise<KmodPlan> {
  const parts: Array<[string, string]> = [];
  const runtime = call.args.apply_runtime !== false;
  if (runtime) {
    parts.push(['modules', `cut -d ' ' -f 1 /proc/modules 2>/dev/null`], ['builtin', `test -d ${shellQuote(`/sys/module/${kernelName(call.name)}`)}`]);
  }
  if (call.args.persist === true) parts.push(['persist', `cat -- ${shellQuote(persistPath(call.name))} 2>/dev/null`]);
  if (parts.length === 0) return { load: false, persist: false, persistFileExists: false };
  const sections = await probe(call.ctx, parts);
  const loaded = !runtime || section(sections, 'modules').out.split('\n').includes(kernelName(call.name)) || section(sections, 'builtin').code === 0;
  const persisted = section(sections, 'persist');
  const persistedNames = persisted.out.split('\n').map((l) => kernelName(l.replace(/#.*/, '').trim()));
  return {
    load: !loaded,
    persist: call.args.persist === true && !persistedNames.includes(kernelName(call.name)),
    persistFileExists: persisted.code === 0,
  };
}

function changesOf(name: string, p: KmodPlan): Record<string, unknown> {
  return { ...(p.load ? { [name]: 'loaded' } : {}), ...(p.persist ? { persist: persistPath(name) } : {}) };
}

export const kmodPresent: StateFunction = defineFunction({
  schema,
  checkName: (name) => {
    const parsed = moduleName.safeParse(name);
    return parsed.success ? undefined : (parsed.error.issues[0]?.message ?? 'invalid module name');
  },
  async check(call) {
    const p = await plan(call);
    if (!p.load && !p.persist) return inSync(`Kernel module ${call.name} is present`);
    const what = [p.load ? 'loaded' : '', p.persist ? `persisted in ${persistPath(call.name)}` : ''].filter(Boolean).join(' and ');
    const outcome = wouldChange(changesOf(call.name, p), `Kernel module ${call.name} would be ${what}`);
    plans.set(outcome, p);
    return outcome;
  },
  async apply(call, checked) {
    const p = plans.get(checked) ?? (await plan(call));
    const commands: string[] = [];
    if (p.persist && !p.persistFileExists) commands.push(`mkdir -p -- ${shellQuote('/etc/modules-load.d')}`);
    if (p.load) commands.push(`modprobe -- ${shellQuote(call.name)}`);
    if (commands.length > 0) {
      const result = await run(call.ctx, commands.join(' && '));
      if (result.code !== 0) return failed(`Loading kernel module ${call.name} failed (${failureText(result)})`);
    }
    if (p.persist) await call.ctx.transport.writeFile(persistPath(call.name), `${call.name}\n`, { mode: '0644' });
    return applied(changesOf(call.name, p), `Kernel module ${call.name} ${[p.load ? 'loaded' : '', p.persist ? 'persisted' : ''].filter(Boolean).join(' and ')}`);
  },
});
