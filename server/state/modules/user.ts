import { z } from 'zod';

import type { CheckOutcome, StateFunction } from '../types.js';
import { absolutePath, ACCOUNT_NAME, argsSchema, listOrCsv, nonNegativeInt, word } from './args.js';
import { applied, defineFunction, failed, inSync, wouldChange, type Call } from './define.js';
import { failureText, probe, run, section } from './run.js';
import { quoteAll, shellQuote } from './shell.js';

/**
 * user.present: one probe (`getent passwd`, `id -gn`, `id -Gn`), then one useradd or usermod. As in Salt, a listed
 * `groups` is the exact set of supplementary groups unless `remove_groups: false` (then it is a minimum).
 * Passwords are not managed here (a hash on a command line is visible to every process on the node).
 */

const accountName = word('user or group name', ACCOUNT_NAME);
export const checkAccountName = (name: string): string | undefined => {
  const parsed = accountName.safeParse(name);
  return parsed.success ? undefined : (parsed.error.issues[0]?.message ?? 'invalid name');
};

const schema = argsSchema({
  uid: nonNegativeInt.optional(),
  /** A number or a group name. */
  gid: z.union([nonNegativeInt, accountName]).optional(),
  home: absolutePath.optional(),
  shell: absolutePath.optional(),
  // The full name is GECOS's first comma-separated field (as in Salt): a comma would start the room-number field, so
  // the name read back could never equal it.
  fullname: z.string().refine((s) => !/[:,\n]/.test(s), 'may not contain ":", "," or a newline (GECOS fields are comma-separated; the full name is the first)').optional(),
  groups: listOrCsv.pipe(z.array(accountName)).optional(),
  remove_groups: z.boolean().optional(),
  createhome: z.boolean().optional(),
  system: z.boolean().optional(),
});
type Args = z.output<typeof schema>;

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

export function parsePasswd(line: string): PasswdEntry | undefined {
  const f = line.trim().split(':');
  if (f.length < 7) return undefined;
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), gecos: f[4]!, home: f[5]!, shell: f[6]! };
}

interface UserPlan {
  exists: boolean;
  changes: Record<string, unknown>;
  /** Groups to put on `-G` (the full list, or only the missing ones with `-a`). */
  groups?: { list: string[]; append: boolean };
  /** The whole GECOS field to write when the full name changes. */
  gecos?: string;
}

const plans = new WeakMap<CheckOutcome, UserPlan>();

async function plan(call: Call<Args>): Promise<UserPlan> {
  const name = shellQuote(call.name);
  const sections = await probe(call.ctx, [
    ['passwd', `getent passwd -- ${name}`],
    ['primary', `id -gn -- ${name} 2>/dev/null`],
    ['groups', `id -Gn -- ${name} 2>/dev/null`],
  ]);
  const entry = parsePasswd(section(sections, 'passwd').out);
  const { args } = call;
  const wantedGroups = args.groups === undefined ? undefined : [...new Set(args.groups)].sort();
  if (entry === undefined) {
    const changes: Record<string, unknown> = { name: call.name };
    for (const key of ['uid', 'gid', 'home', 'shell', 'fullname'] as const) if (args[key] !== undefined) changes[key] = args[key];
    if (wantedGroups !== undefined) changes.groups = wantedGroups;
    return { exists: false, changes, ...(wantedGroups?.length ? { groups: { list: wantedGroups, append: false } } : {}) };
  }
  const changes: Record<string, unknown> = {};
  let gecos: string | undefined;
  if (args.uid !== undefined && args.uid !== entry.uid) changes.uid = args.uid;
  if (args.gid !== undefined) {
    const primary = section(sections, 'primary').out.trim();
    const same = typeof args.gid === 'number' ? args.gid === entry.gid : args.gid === primary;
    if (!same) changes.gid = args.gid;
  }
  if (args.home !== undefined && args.home !== entry.home) changes.home = args.home;
  if (args.shell !== undefined && args.shell !== entry.shell) changes.shell = args.shell;
  if (args.fullname !== undefined) {
    const [current = '', ...otherFields] = entry.gecos.split(',');
    if (args.fullname !== current) {
      changes.fullname = args.fullname;
      // usermod -c replaces the whole GECOS field: keep the room, phone and other fields the state does not manage.
      gecos = [args.fullname, ...otherFields].join(',');
    }
  }
  let groups: UserPlan['groups'];
  if (wantedGroups !== undefined) {
    const primary = section(sections, 'primary').out.trim();
    const current = section(sections, 'groups').out.trim().split(/\s+/).filter((g) => g !== '' && g !== primary).sort();
    // The primary group is no supplementary group on either side (as in Salt): listing it in `groups` must not make
    // every run change the membership.
    const wantedPrimary = typeof args.gid === 'string' ? args.gid : primary;
    const wanted = wantedGroups.filter((g) => g !== primary && g !== wantedPrimary);
    if (args.remove_groups === false) {
      const missing = wanted.filter((g) => !current.includes(g));
      if (missing.length > 0) {
        changes.groups = [...new Set([...current, ...missing])].sort();
        groups = { list: missing, append: true };
      }
    } else if (current.join(',') !== wanted.join(',')) {
      changes.groups = wanted;
      groups = { list: wanted, append: false };
    }
  }
  return { exists: true, changes, ...(groups ? { groups } : {}), ...(gecos !== undefined ? { gecos } : {}) };
}

export function userCommand(name: string, args: Args, p: UserPlan): string {
  const words: string[] = [p.exists ? 'usermod' : 'useradd'];
  const option = (flag: string, value: unknown) => words.push(flag, shellQuote(String(value)));
  const c = p.changes;
  if (c.uid !== undefined) option('-u', c.uid);
  if (c.gid !== undefined) option('-g', c.gid);
  if (c.home !== undefined) option('-d', c.home);
  if (c.shell !== undefined) option('-s', c.shell);
  if (c.fullname !== undefined) option('-c', p.gecos ?? c.fullname);
  if (p.groups !== undefined) {
    if (p.groups.append) words.push('-a');
    option('-G', p.groups.list.join(','));
  }
  if (!p.exists) {
    words.push(args.createhome === false ? '-M' : '-m');
    if (args.system === true) words.push('-r');
  }
  return `${words.join(' ')} -- ${quoteAll([name])}`;
}

export const userPresent: StateFunction = defineFunction({
  schema,
  checkName: checkAccountName,
  async check(call) {
    const p = await plan(call);
    if (p.exists && Object.keys(p.changes).length === 0) return inSync(`User ${call.name} is present and up to date`);
    const outcome = wouldChange(p.changes, p.exists ? `User ${call.name} would be updated (${Object.keys(p.changes).join(', ')})` : `User ${call.name} would be created`);
    plans.set(outcome, p);
    return outcome;
  },
  async apply(call, checked) {
    const p = plans.get(checked) ?? (await plan(call));
    if (p.exists && Object.keys(p.changes).length === 0) return applied({}, `User ${call.name} is present and up to date`);
    const result = await run(call.ctx, userCommand(call.name, call.args, p));
    if (result.code !== 0) return failed(`${p.exists ? 'usermod' : 'useradd'} ${call.name} failed (${failureText(result)})`);
    return applied(p.changes, p.exists ? `User ${call.name} updated` : `User ${call.name} created`);
  },
});
