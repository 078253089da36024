import { z } from 'zod';

import type { CheckOutcome, ModuleContext, StateFunction } from '../types.js';
import { argsSchema, word } from './args.js';
import { applied, defineFunction, failed, inSync, wouldChange, type Call } from './define.js';
import { failureText, run } from './run.js';
import { shellQuote } from './shell.js';

/**
 * service.running / enabled / dead / disabled over systemd. One probe answers a check: `systemctl is-active` and
 * `is-enabled` (their words, not their exit codes, which differ between systemd versions), plus whether the unit
 * file changed on disk, so apply can run daemon-reload only when it is due. Changes are Salt's `{<name>: true}`.
 *
 * A start or restart is confirmed, as Salt's service.running confirms a start: `systemctl start` of a Type=simple
 * daemon succeeds as soon as the process runs, so a daemon that rejects its configuration a moment later would
 * read as started. After `init_delay` seconds (Salt's argument; none by default) the unit must be active, else the
 * state fails with the unit's last journal lines.
 */

const serviceName = word('service name', /^[A-Za-z0-9@_.:\\-]+$/);
const checkServiceName = (name: string): string | undefined => {
  const parsed = serviceName.safeParse(name);
  return parsed.success ? undefined : (parsed.error.issues[0]?.message ?? 'invalid service name');
};

export interface ServiceStatus {
  /** `active`, `inactive`, `failed`, `activating`, ... or '' when systemd gave no answer. */
  active: string;
  /** `enabled`, `disabled`, `static`, `masked`, ... or '' / `not-found` for a unit systemd does not know. */
  enabled: string;
  needsReload: boolean;
}

export function serviceProbe(name: string): string {
  const unit = shellQuote(name);
  return (
    `printf 'active=%s\\nenabled=%s\\nreload=%s\\n' ` +
    `"$(systemctl is-active -- ${unit} 2>/dev/null)" ` +
    `"$(systemctl is-enabled -- ${unit} 2>/dev/null)" ` +
    `"$(systemctl show -p NeedDaemonReload --value -- ${unit} 2>/dev/null)"`
  );
}

export function parseServiceStatus(stdout: string): ServiceStatus {
  const field = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(stdout)?.[1]?.trim() ?? '';
  return { active: field('active'), enabled: field('enabled'), needsReload: field('reload') === 'yes' };
}

const isRunning = (s: ServiceStatus) => s.active === 'active' || s.active === 'reloading';
// `static` and `indirect` units cannot be enabled further; `enabled-runtime` does not survive a reboot.
const ENABLED_WORDS = new Set(['enabled', 'static', 'indirect', 'alias', 'generated', 'transient']);
const isEnabled = (s: ServiceStatus) => ENABLED_WORDS.has(s.enabled);
const isUnknownUnit = (s: ServiceStatus) => s.enabled === '' || s.enabled === 'not-found';

async function status(ctx: ModuleContext, name: string): Promise<ServiceStatus> {
  return parseServiceStatus((await run(ctx, serviceProbe(name))).stdout);
}

/** Runs `systemctl <verb>` for each verb in order (daemon-reload first when systemd asks for it). */
async function systemctl(ctx: ModuleContext, name: string, verbs: readonly string[], needsReload: boolean): Promise<string | undefined> {
  if (verbs.length === 0) return undefined;
  const commands = verbs.map((verb) => `systemctl ${verb} -- ${shellQuote(name)}`);
  if (needsReload) commands.unshift('systemctl daemon-reload');
  const result = await run(ctx, commands.join(' && '));
  return result.code === 0 ? undefined : `systemctl ${verbs.join(', ')} ${name} failed (${failureText(result)})`;
}

const JOURNAL_MARK = '--rackseed-journal--';
const JOURNAL_LINES = 8;

/**
 * After a start or restart: undefined when the unit is running `initDelay` seconds later, else why not, with what
 * the unit last wrote to the journal (where a daemon that dies before it opens its own log says why).
 */
async function confirmRunning(ctx: ModuleContext, name: string, initDelay: number, done: string): Promise<string | undefined> {
  const unit = shellQuote(name);
  const wait = initDelay > 0 ? `sleep ${initDelay}; ` : '';
  // This run of the unit only (its InvocationID), not what earlier runs wrote; the unit's last lines without one.
  // journald reads a process's invocation ID from /proc when it reads the line, so what a daemon wrote just before
  // it exited often has none (a loaded node logs it after the exit): that line is the unit's and its main PID's.
  const show = (property: string) => `systemctl show -p ${property} --value -- ${unit} 2>/dev/null`;
  const journal =
    `id="$(${show('InvocationID')})"; ` +
    `if [ -n "$id" ]; then unit="$(${show('Id')})"; pid="$(${show('ExecMainPID')})"; ` +
    `journalctl -n ${JOURNAL_LINES} --no-pager -o cat "_SYSTEMD_INVOCATION_ID=$id" + "INVOCATION_ID=$id" + "_SYSTEMD_UNIT=$unit" "_PID=\${pid:-0}" 2>/dev/null; ` +
    `else journalctl -u ${unit} -n ${JOURNAL_LINES} --no-pager -o cat 2>/dev/null; fi`;
  const result = await run(ctx, `${wait}${serviceProbe(name)}; echo '${JOURNAL_MARK}'; ${journal}`, ctx.timeoutMs + initDelay * 1000);
  const [probed = '', logged = ''] = result.stdout.split(`${JOURNAL_MARK}\n`);
  const s = parseServiceStatus(probed);
  if (isRunning(s)) return undefined;
  const lines = logged.trim().split('\n').map((l) => l.trim()).filter(Boolean);
  const after = initDelay > 0 ? ` ${initDelay} s later` : '';
  return `Service ${name} ${done} but is not running${after} (${s.active || 'no answer from systemd'})${lines.length > 0 ? `: ${lines.join(' | ')}` : ''}`;
}

const notFoundNote = (s: ServiceStatus, name: string) => (isUnknownUnit(s) ? ` (unit ${name} is not known to systemd yet)` : '');

interface Want {
  running?: boolean | undefined;
  enabled?: boolean | undefined;
}

/** What has to change, Salt-shaped: `{nginx: true}` for a start or stop, `enabled: true|false` when that changes too. */
function plan(name: string, s: ServiceStatus, want: Want): { verbs: string[]; changes: Record<string, unknown>; words: string[] } {
  const verbs: string[] = [];
  const words: string[] = [];
  const changes: Record<string, unknown> = {};
  if (want.enabled === true && !isEnabled(s)) {
    if (s.enabled === 'masked') verbs.push('unmask');
    verbs.push('enable');
    changes.enabled = true;
    words.push('enabled');
  }
  if (want.enabled === false && (isEnabled(s) || s.enabled === 'enabled-runtime') && s.enabled !== 'static') {
    verbs.push('disable');
    changes.enabled = false;
    words.push('disabled');
  }
  if (want.running === true && !isRunning(s)) {
    verbs.push('start');
    changes[name] = true;
    words.push('started');
  }
  if (want.running === false && (isRunning(s) || s.active === 'activating')) {
    verbs.push('stop');
    changes[name] = true;
    words.push('stopped');
  }
  // service.enabled / service.disabled report as Salt does: the unit's name is what changed.
  if (want.running === undefined && 'enabled' in changes) return { verbs, changes: { [name]: true }, words };
  return { verbs, changes, words };
}

type Args = { enable?: boolean | undefined; reload?: boolean | undefined; init_delay?: number | undefined };

/** Status and plan from check, reused by apply so it needs no second probe. */
const checkedPlans = new WeakMap<CheckOutcome, { s: ServiceStatus; p: ReturnType<typeof plan> }>();

function serviceFunction(wantOf: (args: Args) => Want, schema: z.ZodType, withWatch: boolean): StateFunction {
  const spec = {
    schema,
    checkName: checkServiceName,
    async check(call: Call<unknown>) {
      const s = await status(call.ctx, call.name);
      const p = plan(call.name, s, wantOf(call.args as Args));
      if (p.verbs.length === 0) return inSync(`Service ${call.name} is in the correct state (${s.active || 'unknown'}, ${s.enabled || 'unknown'})`);
      const outcome = wouldChange(p.changes, `Service ${call.name} would be ${p.words.join(' and ')}${notFoundNote(s, call.name)}`);
      checkedPlans.set(outcome, { s, p });
      return outcome;
    },
    async apply(call: Call<unknown>, checked: CheckOutcome) {
      let known = checkedPlans.get(checked);
      if (known === undefined) {
        const s = await status(call.ctx, call.name);
        known = { s, p: plan(call.name, s, wantOf(call.args as Args)) };
      }
      const { s, p } = known;
      if (p.verbs.length === 0) return applied({}, `Service ${call.name} is in the correct state`);
      const problem = await systemctl(call.ctx, call.name, p.verbs, s.needsReload);
      if (problem) return failed(problem);
      const done = `Service ${call.name} ${p.words.join(' and ')}`;
      if (p.verbs.includes('start')) {
        const dead = await confirmRunning(call.ctx, call.name, (call.args as Args).init_delay ?? 0, 'was started');
        if (dead) return failed(dead);
      }
      return applied(p.changes, done);
    },
  };
  if (!withWatch) return defineFunction(spec);
  return defineFunction({
    ...spec,
    /**
     * mod_watch: restart (or reload with `reload: true`); restart also starts a stopped service. A watch runs only
     * on a unit the state found running, so systemd's start rate limit refusing the restart means deliberate
     * restarts (one per converge that changed a watched file) used it up, not a crash loop: the retry clears the
     * counter with reset-failed, as systemd's own message advises, and says so. Any other failure stays a failure.
     */
    async watch(call: Call<unknown>) {
      const args = call.args as Args;
      const unit = shellQuote(call.name);
      const verb = args.reload === true ? 'reload-or-restart' : 'restart';
      const done = `Service ${call.name} ${args.reload === true ? 'reloaded' : 'restarted'}`;
      const command = `if [ "$(systemctl show -p NeedDaemonReload --value -- ${unit} 2>/dev/null)" = yes ]; then systemctl daemon-reload; fi; systemctl ${verb} -- ${unit}`;
      const confirmed = async (comment: string) => {
        const dead = await confirmRunning(call.ctx, call.name, args.init_delay ?? 0, `was ${args.reload === true ? 'reloaded' : 'restarted'}`);
        return dead ? failed(dead) : applied({ [call.name]: true }, comment);
      };
      const result = await run(call.ctx, command);
      if (result.code === 0) return confirmed(done);
      const refusal = `systemctl ${verb} ${call.name} failed (${failureText(result)})`;
      const why = (await run(call.ctx, `systemctl show -p Result --value -- ${unit}`)).stdout.trim();
      if (why !== 'start-limit-hit') return failed(refusal);
      const retry = await run(call.ctx, `systemctl reset-failed -- ${unit} && systemctl ${verb} -- ${unit}`);
      if (retry.code !== 0) return failed(`${refusal}; after reset-failed: systemctl ${verb} ${call.name} failed again (${failureText(retry)})`);
      return confirmed(`${done} (systemd's start rate limit was reached by earlier restarts: reset-failed first)`);
    },
  });
}

// Salt takes init_delay in seconds; ten minutes is more than any daemon should need to fail.
const runningSchema = argsSchema({ enable: z.boolean().optional(), reload: z.boolean().optional(), init_delay: z.number().min(0).max(600).optional() });
const deadSchema = argsSchema({ enable: z.boolean().optional() });
const plainSchema = argsSchema({});

export const serviceRunning = serviceFunction((a) => ({ running: true, enabled: a.enable }), runningSchema, true);
export const serviceDead = serviceFunction((a) => ({ running: false, enabled: a.enable }), deadSchema, false);
export const serviceEnabled = serviceFunction(() => ({ enabled: true }), plainSchema, false);
export const serviceDisabled = serviceFunction(() => ({ enabled: false }), plainSchema, false);
