import { z } from 'zod';

import { RackseedError } from '../../model/errors.js';
import type { CheckOutcome, ModuleContext, StateFunction } from '../types.js';
import { argsSchema, PACKAGE_NAME, scalarText, word } from './args.js';
import { applied, defineFunction, failed, inSync, wouldChange, type Call } from './define.js';
import { aptBackend } from './pkg-apt.js';
import { dnfBackend } from './pkg-dnf.js';
import type { InstalledPackage, PackageBackend, PackageSpec } from './pkg-types.js';
import { failureText, run } from './run.js';

/**
 * pkg.installed / pkg.removed / pkg.latest. Changes are Salt's: `{nginx: {old: '', new: '1.22.1-9'}}`, plus
 * `hold: {old, new}` inside a package's entry when its hold changes. Each check is one query for all packages.
 */

const packageName = word('package name', PACKAGE_NAME);
/** `pkgs:` entries: `- nginx` or `- nginx: 1.22.1-9` (a one-key map pinning a version). */
const packageEntry = z.union([
  packageName,
  z.record(packageName, scalarText).refine((m) => Object.keys(m).length === 1, 'expected a one-key map such as "nginx: 1.22.1-9"'),
]);

const common = {
  pkgs: z.array(packageEntry).min(1).optional(),
  refresh: z.boolean().optional(),
  fromrepo: z.string().min(1).optional(),
};

const installedSchema = argsSchema({ ...common, version: scalarText.optional(), hold: z.boolean().optional() });
const latestSchema = argsSchema({ ...common, hold: z.boolean().optional() });
const removedSchema = argsSchema({ pkgs: common.pkgs });

type InstalledArgs = z.output<typeof installedSchema>;

export function backendFor(ctx: ModuleContext): PackageBackend {
  if (ctx.facts.osFamily === 'debian') return aptBackend;
  if (ctx.facts.osFamily === 'redhat') return dnfBackend;
  throw new RackseedError('STATE_MODULE_FAILED', `pkg: unsupported OS family "${ctx.facts.osFamily}" (debian and redhat are)`);
}

/** The packages a state names: its `pkgs:` list, else its `name` (with `version`). */
function wantedPackages(call: Call<{ pkgs?: Array<string | Record<string, string>> | undefined; version?: string | undefined }>): PackageSpec[] {
  if (call.args.pkgs) {
    return call.args.pkgs.map((entry) => {
      if (typeof entry === 'string') return { name: entry };
      const [name, version] = Object.entries(entry)[0]!;
      return { name, version };
    });
  }
  if (!packageName.safeParse(call.name).success) {
    throw new RackseedError('SLS_INVALID', `${call.state.id}: name: "${call.name}" is not a valid package name`);
  }
  return call.args.version === undefined ? [{ name: call.name }] : [{ name: call.name, version: call.args.version }];
}

const versionCrossCheck = (args: { pkgs?: unknown; version?: string | undefined }): string[] =>
  args.pkgs !== undefined && args.version !== undefined ? ['version: not allowed with pkgs (pin each entry: "- nginx: 1.22.1-9")'] : [];

function describe(names: readonly string[]): string {
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`;
}

/** What pkg.installed / pkg.latest would do: install (or upgrade) these, change the hold on those. */
interface PackagePlan {
  install: PackageSpec[];
  hold: string[];
  unhold: string[];
  before: Map<string, InstalledPackage>;
}

function holdPlan(names: readonly string[], before: Map<string, InstalledPackage>, hold: boolean | undefined): { hold: string[]; unhold: string[] } {
  if (hold === undefined) return { hold: [], unhold: [] };
  return {
    hold: hold ? names.filter((n) => !before.get(n)?.held) : [],
    unhold: hold ? [] : names.filter((n) => before.get(n)?.held === true),
  };
}

function predictedChanges(plan: PackagePlan, newVersion: (spec: PackageSpec) => string): Record<string, unknown> {
  const changes: Record<string, Record<string, unknown>> = {};
  for (const spec of plan.install) changes[spec.name] = { old: plan.before.get(spec.name)?.version ?? '', new: newVersion(spec) };
  for (const name of plan.hold) changes[name] = { ...changes[name], hold: { old: false, new: true } };
  for (const name of plan.unhold) changes[name] = { ...changes[name], hold: { old: true, new: false } };
  return changes;
}

function planComment(plan: PackagePlan, verb: string): string {
  const parts: string[] = [];
  if (plan.install.length > 0) parts.push(`${verb} ${describe(plan.install.map((s) => s.name))}`);
  if (plan.hold.length > 0) parts.push(`hold ${describe(plan.hold)}`);
  if (plan.unhold.length > 0) parts.push(`unhold ${describe(plan.unhold)}`);
  return parts.join('; ');
}

/** Plans made by check, handed to apply without a second query (the runner passes check's outcome back). */
const plans = new WeakMap<CheckOutcome, PackagePlan>();

async function planInstalled(call: Call<InstalledArgs>): Promise<{ plan: PackagePlan; specs: PackageSpec[] }> {
  const backend = backendFor(call.ctx);
  const specs = wantedPackages(call);
  const before = await backend.queryInstalled(call.ctx, specs.map((s) => s.name));
  const install = specs.filter((s) => {
    const have = before.get(s.name);
    return have === undefined || (s.version !== undefined && !backend.versionMatches(have.version, s.version));
  });
  return { plan: { install, before, ...holdPlan(specs.map((s) => s.name), before, call.args.hold) }, specs };
}

/** Runs the install (refreshing the package lists first when asked, or once when they look stale), then holds. */
async function carryOut(call: Call<{ refresh?: boolean | undefined; fromrepo?: string | undefined }>, plan: PackagePlan, upgrade: boolean): Promise<string | undefined> {
  const backend = backendFor(call.ctx);
  let refreshed = false;
  const refresh = async (): Promise<string | undefined> => {
    refreshed = true;
    const result = await run(call.ctx, backend.refreshCommand());
    return result.code === 0 ? undefined : `refreshing package lists failed (${failureText(result)})`;
  };
  if (call.args.refresh === true) {
    const problem = await refresh();
    if (problem) return problem;
  }
  if (plan.install.length > 0) {
    const options = {
      allowDowngrade: plan.install.some((s) => s.version !== undefined && plan.before.has(s.name)),
      changeHeld: plan.install.some((s) => plan.before.get(s.name)?.held === true),
      ...(call.args.fromrepo === undefined ? {} : { fromrepo: call.args.fromrepo }),
    };
    const command = upgrade ? backend.upgradeCommand(plan.install.map((s) => s.name), options) : backend.installCommand(plan.install, options);
    let result = await run(call.ctx, command);
    if (result.code !== 0 && !refreshed && call.args.refresh !== false && backend.looksStale(result.stderr)) {
      const problem = await refresh();
      if (problem) return problem;
      result = await run(call.ctx, command);
    }
    if (result.code !== 0) return `installing ${describe(plan.install.map((s) => s.name))} failed (${failureText(result)})`;
  }
  for (const [names, hold] of [[plan.hold, true], [plan.unhold, false]] as const) {
    if (names.length === 0) continue;
    const result = await run(call.ctx, backend.holdCommand(names, hold));
    if (result.code !== 0) return `${hold ? 'holding' : 'unholding'} ${describe(names)} failed (${failureText(result)})`;
  }
  return undefined;
}

/** Changes as they really happened: versions read back from the package database after the install. */
async function actualChanges(call: Call<unknown>, plan: PackagePlan): Promise<{ changes: Record<string, unknown>; after: Map<string, InstalledPackage> }> {
  const after = await backendFor(call.ctx).queryInstalled(call.ctx, plan.install.map((s) => s.name));
  return { changes: predictedChanges(plan, (spec) => after.get(spec.name)?.version ?? ''), after };
}

export const pkgInstalled: StateFunction = defineFunction({
  schema: installedSchema,
  crossCheck: versionCrossCheck,
  async check(call) {
    const { plan, specs } = await planInstalled(call);
    if (plan.install.length === 0 && plan.hold.length === 0 && plan.unhold.length === 0) {
      return inSync(specs.length === 1 ? `Package ${specs[0]!.name} is already installed` : `All ${specs.length} packages are already installed`);
    }
    const outcome = wouldChange(predictedChanges(plan, (s) => s.version ?? 'latest'), `Would ${planComment(plan, 'install')}`);
    plans.set(outcome, plan);
    return outcome;
  },
  async apply(call, checked) {
    const plan = plans.get(checked) ?? (await planInstalled(call)).plan;
    const problem = await carryOut(call, plan, false);
    if (problem) return failed(problem);
    const backend = backendFor(call.ctx);
    const { changes, after } = await actualChanges(call, plan);
    const wrong = plan.install.filter((s) => {
      const have = after.get(s.name);
      return have === undefined || (s.version !== undefined && !backend.versionMatches(have.version, s.version));
    });
    if (wrong.length > 0) return failed(`After installing, ${describe(wrong.map((s) => s.name))} still not at the wanted version`, changes);
    return applied(changes, `${planComment(plan, 'Installed').replace(/^./, (c) => c.toUpperCase())}`);
  },
});

async function planLatest(call: Call<z.output<typeof latestSchema>>): Promise<PackagePlan & { missingCandidate: string[] }> {
  const backend = backendFor(call.ctx);
  const names = wantedPackages(call).map((s) => s.name);
  const candidates = await backend.queryCandidates(call.ctx, names);
  const held = await backend.queryInstalled(call.ctx, names);
  const install: PackageSpec[] = [];
  const missingCandidate: string[] = [];
  for (const name of names) {
    const c = candidates.get(name);
    if (c?.candidate === undefined) {
      if (c?.installed === undefined) (backend.family === 'redhat' ? install.push({ name }) : missingCandidate.push(name));
      continue;
    }
    if (c.installed !== c.candidate) install.push({ name, version: c.candidate });
  }
  return { install, before: held, missingCandidate, ...holdPlan(names, held, call.args.hold) };
}

const latestPlans = new WeakMap<CheckOutcome, PackagePlan>();

export const pkgLatest: StateFunction = defineFunction({
  schema: latestSchema,
  async check(call) {
    const plan = await planLatest(call);
    if (plan.missingCandidate.length > 0 && call.args.refresh !== true) {
      throw new RackseedError('STATE_MODULE_FAILED', `No installation candidate for ${describe(plan.missingCandidate)} (wrong name, or stale package lists: set refresh: true)`);
    }
    const all = { ...plan, install: [...plan.install, ...plan.missingCandidate.map((name) => ({ name }))] };
    if (all.install.length === 0 && all.hold.length === 0 && all.unhold.length === 0) return inSync('All packages are at their latest version');
    const outcome = wouldChange(predictedChanges(all, (s) => s.version ?? 'latest'), `Would ${planComment(all, 'upgrade to the latest')}`);
    latestPlans.set(outcome, all);
    return outcome;
  },
  async apply(call, checked) {
    // After a refresh the candidates may be newer than check saw: plan again.
    let plan = latestPlans.get(checked);
    if (plan === undefined || call.args.refresh === true) {
      if (call.args.refresh === true) {
        const result = await run(call.ctx, backendFor(call.ctx).refreshCommand());
        if (result.code !== 0) return failed(`refreshing package lists failed (${failureText(result)})`);
      }
      const fresh = await planLatest(call);
      if (fresh.missingCandidate.length > 0) return failed(`No installation candidate for ${describe(fresh.missingCandidate)}`);
      plan = fresh;
    }
    const problem = await carryOut({ ...call, args: { ...call.args, refresh: false } }, plan, true);
    if (problem) return failed(problem);
    const { changes } = await actualChanges(call, plan);
    return applied(changes, planComment(plan, 'Upgraded').replace(/^./, (c) => c.toUpperCase()) || 'No changes');
  },
});

export const pkgRemoved: StateFunction = defineFunction({
  schema: removedSchema,
  async check(call) {
    const names = wantedPackages(call).map((s) => s.name);
    const before = await backendFor(call.ctx).queryInstalled(call.ctx, names);
    const present = names.filter((n) => before.has(n));
    if (present.length === 0) return inSync(names.length === 1 ? `Package ${names[0]!} is not installed` : 'None of the packages are installed');
    const changes = Object.fromEntries(present.map((n) => [n, { old: before.get(n)!.version, new: '' }]));
    return wouldChange(changes, `Would remove ${describe(present)}`);
  },
  async apply(call, checked) {
    const present = Object.keys(checked.changes);
    const result = await run(call.ctx, backendFor(call.ctx).removeCommand(present, false));
    if (result.code !== 0) return failed(`removing ${describe(present)} failed (${failureText(result)})`);
    return applied(checked.changes, `Removed ${describe(present)}`);
  },
});
