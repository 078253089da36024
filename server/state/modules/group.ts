import { z } from 'zod';

import type { StateFunction } from '../types.js';
import { ACCOUNT_NAME, argsSchema, listOrCsv, nonNegativeInt, word } from './args.js';
import { applied, defineFunction, failed, inSync, wouldChange } from './define.js';
import { failureText, run } from './run.js';
import { shellQuote } from './shell.js';
import { checkAccountName } from './user.js';

/** group.present: `getent group` to check; groupadd, groupmod and (for `members`, the exact list) gpasswd -M. */

const schema = argsSchema({
  gid: nonNegativeInt.optional(),
  system: z.boolean().optional(),
  members: listOrCsv.pipe(z.array(word('user name', ACCOUNT_NAME))).optional(),
});

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function parseGroup(line: string): GroupEntry | undefined {
  const f = line.trim().split(':');
  if (f.length < 4) return undefined;
  return { name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter((m) => m !== '') };
}

export const groupPresent: StateFunction = defineFunction({
  schema,
  checkName: checkAccountName,
  async check(call) {
    const entry = parseGroup((await run(call.ctx, `getent group -- ${shellQuote(call.name)}`)).stdout);
    const members = call.args.members === undefined ? undefined : [...new Set(call.args.members)].sort();
    const changes: Record<string, unknown> = {};
    if (entry === undefined) {
      changes.name = call.name;
      if (call.args.gid !== undefined) changes.gid = call.args.gid;
      if (members !== undefined && members.length > 0) changes.members = members;
      return wouldChange(changes, `Group ${call.name} would be created`);
    }
    if (call.args.gid !== undefined && call.args.gid !== entry.gid) changes.gid = call.args.gid;
    if (members !== undefined && [...entry.members].sort().join(',') !== members.join(',')) changes.members = members;
    if (Object.keys(changes).length === 0) return inSync(`Group ${call.name} is present and up to date`);
    return wouldChange(changes, `Group ${call.name} would be updated (${Object.keys(changes).join(', ')})`);
  },
  async apply(call, checked) {
    const name = shellQuote(call.name);
    const c = checked.changes;
    const creating = c.name !== undefined;
    const commands: string[] = [];
    if (creating) {
      commands.push(['groupadd', ...(c.gid !== undefined ? ['-g', shellQuote(String(c.gid))] : []), ...(call.args.system === true ? ['-r'] : []), '--', name].join(' '));
    } else if (c.gid !== undefined) {
      commands.push(`groupmod -g ${shellQuote(String(c.gid))} -- ${name}`);
    }
    if (Array.isArray(c.members)) {
      commands.push(`gpasswd -M ${shellQuote((c.members as string[]).join(','))} -- ${name}`);
    }
    const result = await run(call.ctx, commands.join(' && '));
    if (result.code !== 0) return failed(`${creating ? 'Creating' : 'Updating'} group ${call.name} failed (${failureText(result)})`);
    return applied(c, creating ? `Group ${call.name} created` : `Group ${call.name} updated`);
  },
});
