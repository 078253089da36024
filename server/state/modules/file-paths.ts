import { posix } from 'node:path';
import { z } from 'zod';

import { RackseedError } from '../../model/errors.js';
import type { StateFunction } from '../types.js';
import { argsSchema, modeArg, word } from './args.js';
import { applied, defineFunction, failed, inSync, wouldChange } from './define.js';
import { attrChanges, attrCommands, parentOf, statPath } from './file-attrs.js';
import { checkPathName } from './file-managed.js';
import { failureText, run } from './run.js';
import { shellQuote } from './shell.js';

/** file.directory, file.absent and file.symlink: each one stat (or stat + readlink) to check, one command to apply. */

const ownerName = word('user or group name');

const directorySchema = argsSchema({
  user: ownerName.optional(),
  owner: ownerName.optional(),
  group: ownerName.optional(),
  mode: modeArg.optional(),
  dir_mode: modeArg.optional(),
  makedirs: z.boolean().optional(),
});

export const fileDirectory: StateFunction = defineFunction({
  schema: directorySchema,
  checkName: checkPathName,
  crossCheck: (args) => (args.mode !== undefined && args.dir_mode !== undefined ? ['dir_mode: not allowed together with mode (they are the same)'] : []),
  async check(call) {
    const stat = await statPath(call.ctx, call.name, true);
    const kind = stat.target?.kind;
    if (kind !== undefined && kind !== 'missing' && kind !== 'directory') {
      throw new RackseedError('STATE_MODULE_FAILED', `${call.name} exists and is not a directory (${stat.target!.kindText})`);
    }
    const exists = kind === 'directory';
    const attrs = attrChanges({ mode: call.args.mode ?? call.args.dir_mode, user: call.args.user ?? call.args.owner, group: call.args.group }, stat.target, exists);
    if (exists && Object.keys(attrs).length === 0) return inSync(`Directory ${call.name} is in the correct state`);
    const changes = exists ? attrs : { [call.name]: 'New Dir', ...attrs };
    let comment = exists ? `Directory ${call.name} would be updated` : `Directory ${call.name} would be created`;
    if (!exists && stat.parentExists === false && call.args.makedirs !== true) comment += ` but its parent ${parentOf(call.name)} is missing (set makedirs: true)`;
    return wouldChange(changes, comment);
  },
  async apply(call, checked) {
    const exists = !(call.name in checked.changes);
    const commands: string[] = [];
    if (!exists) commands.push(`mkdir ${call.args.makedirs === true ? '-p ' : ''}-- ${shellQuote(call.name)}`);
    const { [call.name]: _created, ...attrs } = checked.changes as Record<string, string>;
    commands.push(...attrCommands(call.name, attrs, call.args.mode ?? call.args.dir_mode));
    const result = await run(call.ctx, commands.join(' && '));
    if (result.code !== 0) return failed(`${exists ? 'Updating' : 'Creating'} directory ${call.name} failed (${failureText(result)})`);
    return applied(checked.changes, exists ? `Directory ${call.name} updated` : `Directory ${call.name} created`);
  },
});

/** Paths no state may delete wholesale, whatever it says. */
const PROTECTED = new Set(['/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/proc', '/root', '/sbin', '/sys', '/usr', '/var']);

export const fileAbsent: StateFunction = defineFunction({
  schema: argsSchema({}),
  // Compared as the path rm would reach: `//etc` (a templated `{{ prefix }}/etc` with prefix `/`), `/./etc` and
  // `/var/../etc` are all /etc.
  checkName: (name) => checkPathName(name) ?? (PROTECTED.has(posix.normalize(name).replace(/\/+$/, '') || '/') ? `refusing to remove ${name}` : undefined),
  async check(call) {
    const stat = await statPath(call.ctx, call.name, false);
    if (stat.target === undefined || stat.target.kind === 'missing') return inSync(`File ${call.name} is not present`);
    return wouldChange({ removed: call.name }, `${stat.target.kind === 'directory' ? 'Directory' : 'File'} ${call.name} would be removed`);
  },
  async apply(call) {
    const result = await run(call.ctx, `rm -rf -- ${shellQuote(call.name)}`);
    if (result.code !== 0) return failed(`Removing ${call.name} failed (${failureText(result)})`);
    return applied({ removed: call.name }, `Removed ${call.name}`);
  },
});

const symlinkSchema = argsSchema({
  target: z.string().min(1),
  force: z.boolean().optional(),
  makedirs: z.boolean().optional(),
});

function symlinkProbe(path: string): string {
  return `printf 'kind=%s\\nlink=%s\\nparent=%s\\n' "$(stat -c '%F' -- ${shellQuote(path)} 2>/dev/null || echo missing)" "$(readlink -- ${shellQuote(path)} 2>/dev/null)" "$(stat -L -c '%F' -- ${shellQuote(parentOf(path))} 2>/dev/null || echo missing)"`;
}

export const fileSymlink: StateFunction = defineFunction({
  schema: symlinkSchema,
  checkName: checkPathName,
  async check(call) {
    const out = (await run(call.ctx, symlinkProbe(call.name))).stdout;
    const kind = /^kind=(.*)$/m.exec(out)?.[1] ?? '';
    const link = /^link=(.*)$/m.exec(out)?.[1] ?? '';
    const parentMissing = /^parent=missing$/m.test(out);
    const target = call.args.target;
    if (kind === 'symbolic link' && link === target) return inSync(`Symlink ${call.name} points to ${target}`);
    if (kind !== 'symbolic link' && kind !== 'missing' && kind !== '' && call.args.force !== true) {
      throw new RackseedError('STATE_MODULE_FAILED', `${call.name} exists and is a ${kind}, not a symlink (set force: true to replace it)`);
    }
    const changes: Record<string, unknown> = { new: target };
    if (kind === 'symbolic link') changes.old = link;
    let comment = kind === 'missing' || kind === '' ? `Symlink ${call.name} would be created` : `Symlink ${call.name} would be changed to ${target}`;
    if (parentMissing && call.args.makedirs !== true) comment += ` but its directory ${parentOf(call.name)} is missing (set makedirs: true)`;
    return wouldChange(changes, comment);
  },
  async apply(call, checked) {
    const path = shellQuote(call.name);
    const commands: string[] = [];
    if (call.args.makedirs === true) commands.push(`mkdir -p -- ${shellQuote(parentOf(call.name))}`);
    // A file or directory in the way is only removed with force (check refused otherwise); -n replaces a link to a dir.
    if (call.args.force === true) commands.push(`{ [ -L ${path} ] || [ ! -e ${path} ] || rm -rf -- ${path}; }`);
    commands.push(`ln -sfn -- ${shellQuote(call.args.target)} ${path}`);
    const result = await run(call.ctx, commands.join(' && '));
    if (result.code !== 0) return failed(`Creating symlink ${call.name} failed (${failureText(result)})`);
    return applied(checked.changes, `Symlink ${call.name} points to ${call.args.target}`);
  },
});
