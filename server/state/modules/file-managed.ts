import { z } from 'zod';

import { RackseedError } from '../../model/errors.js';
import type { CheckOutcome, StateFunction } from '../types.js';
import { absolutePath, argsSchema, modeArg, word } from './args.js';
import { applied, defineFunction, failed, inSync, wouldChange, type Call } from './define.js';
import { attrChanges, attrCommands, parentOf, statPath, type PathStat } from './file-attrs.js';
import { contentDiff } from './file-text.js';
import { failureText, run } from './run.js';
import { shellQuote } from './shell.js';

/**
 * file.managed: a file's content (inline `contents`, or a `source` from the state tree, optionally a nunjucks
 * template; contents are never rendered again), mode and ownership. Content is compared as bytes; the diff is a unified diff unless either side is
 * binary or `show_changes: false` hides it. Writes are atomic (the transport writes a temporary file and renames).
 */

const ownerName = word('user or group name');

const schema = argsSchema({
  contents: z.union([z.string(), z.number(), z.array(z.string())]).optional(),
  contents_newline: z.boolean().optional(),
  source: z.string().min(1).optional(),
  template: z.enum(['nunjucks', 'jinja']).optional(),
  mode: modeArg.optional(),
  user: ownerName.optional(),
  owner: ownerName.optional(),
  group: ownerName.optional(),
  makedirs: z.boolean().optional(),
  replace: z.boolean().optional(),
  show_changes: z.boolean().optional(),
});
type Args = z.output<typeof schema>;

function crossCheck(args: Args): string[] {
  const problems: string[] = [];
  if (args.contents !== undefined && args.source !== undefined) problems.push('contents: not allowed together with source');
  if (args.user !== undefined && args.owner !== undefined) problems.push('owner: not allowed together with user (they are the same)');
  // As in Salt, contents are not rendered: the SLS that holds them already was, with pillar values and facts pasted
  // in as text, and rendering that text again would run whatever template code those values carry.
  if (args.template !== undefined && args.contents !== undefined) problems.push('template: applies to a source file, not to contents (the SLS is already rendered; use a source: rackseed:// template)');
  if (args.template !== undefined && args.source === undefined && args.contents === undefined) problems.push('template: needs a source');
  return problems;
}

export const checkPathName = (name: string): string | undefined => (absolutePath.safeParse(name).success ? undefined : 'expected an absolute path');

/** The bytes the file should hold, or undefined when the state manages only its existence and attributes. */
async function desiredContent(call: Call<Args>): Promise<Buffer | undefined> {
  const { args, ctx } = call;
  let text: string;
  let file = `${call.state.source.file} (${call.state.id}: contents)`;
  if (args.source !== undefined) {
    const source = await ctx.readSource(args.source);
    text = source.text;
    file = source.file;
  } else if (args.contents !== undefined) {
    text = Array.isArray(args.contents) ? args.contents.join('\n') : String(args.contents);
  } else {
    return undefined;
  }
  if (args.template !== undefined && args.source !== undefined) text = ctx.renderTemplate(text, file);
  // Salt's contents_newline: inline contents end with a newline unless told otherwise.
  if (args.source === undefined && args.contents_newline !== false && text !== '' && !text.endsWith('\n')) text += '\n';
  return Buffer.from(text, 'utf8');
}

interface ManagedPlan {
  desired: Buffer | undefined;
  before: Buffer | undefined;
  stat: PathStat;
  writeContent: boolean;
  attrs: Record<string, string>;
}

const plans = new WeakMap<CheckOutcome, ManagedPlan>();

async function readCurrent(call: Call<Args>): Promise<{ before: Buffer | undefined; stat: PathStat }> {
  // Content and attributes are fetched at the same time: two requests, one round trip of latency.
  const [read, stat] = await Promise.allSettled([call.ctx.transport.readFile(call.name), statPath(call.ctx, call.name, true)]);
  if (stat.status === 'rejected') throw stat.reason;
  if (stat.value.target?.kind === 'directory') throw new RackseedError('STATE_MODULE_FAILED', `${call.name} exists and is a directory`);
  if (stat.value.target?.kind === 'other') throw new RackseedError('STATE_MODULE_FAILED', `${call.name} exists and is a ${stat.value.target.kindText}`);
  if (read.status === 'rejected') throw read.reason;
  return { before: read.value, stat: stat.value };
}

async function plan(call: Call<Args>): Promise<ManagedPlan> {
  const [desired, current] = await Promise.all([desiredContent(call), readCurrent(call)]);
  const exists = current.before !== undefined;
  const replace = call.args.replace !== false;
  const writeContent = !exists || (desired !== undefined && replace && !desired.equals(current.before!));
  const wanted = { mode: call.args.mode, user: call.args.user ?? call.args.owner, group: call.args.group };
  return { desired, ...current, writeContent, attrs: attrChanges(wanted, current.stat.target, exists) };
}

function changesOf(call: Call<Args>, p: ManagedPlan): Record<string, unknown> {
  const changes: Record<string, unknown> = {};
  if (p.writeContent) changes.diff = contentDiff(call.name, p.before, p.desired ?? Buffer.alloc(0), call.args.show_changes !== false);
  return { ...changes, ...p.attrs };
}

export const fileManaged: StateFunction = defineFunction({
  schema,
  crossCheck,
  checkName: checkPathName,
  async check(call) {
    const p = await plan(call);
    if (!p.writeContent && Object.keys(p.attrs).length === 0) return inSync(`File ${call.name} is in the correct state`);
    let comment = p.before === undefined ? `File ${call.name} would be created` : `File ${call.name} would be updated`;
    if (p.before === undefined && p.stat.parentExists === false) {
      comment += call.args.makedirs === true ? ` (with its directory ${parentOf(call.name)})` : ` but its directory ${parentOf(call.name)} is missing (set makedirs: true)`;
    }
    const outcome = wouldChange(changesOf(call, p), comment);
    plans.set(outcome, p);
    return outcome;
  },
  async apply(call, checked) {
    const p = plans.get(checked) ?? (await plan(call));
    const { ctx, name } = call;
    if (p.before === undefined && p.stat.parentExists === false) {
      if (call.args.makedirs !== true) return failed(`Parent directory ${parentOf(name)} does not exist (set makedirs: true)`);
      const made = await run(ctx, `mkdir -p -- ${shellQuote(parentOf(name))}`);
      if (made.code !== 0) return failed(`Creating ${parentOf(name)} failed (${failureText(made)})`);
    }
    if (p.writeContent) {
      // An atomic replace makes a new inode: carry over the mode and owner the old file had unless the state sets them.
      const target = p.stat.target;
      const mode = call.args.mode ?? target?.mode;
      const owner = call.args.user ?? call.args.owner ?? target?.user;
      const group = call.args.group ?? target?.group;
      await ctx.transport.writeFile(name, p.desired ?? Buffer.alloc(0), {
        ...(mode === undefined ? {} : { mode }),
        ...(owner === undefined ? {} : { owner }),
        ...(group === undefined ? {} : { group }),
      });
    } else {
      const commands = attrCommands(name, p.attrs, call.args.mode);
      if (commands.length > 0) {
        const result = await run(ctx, commands.join(' && '));
        if (result.code !== 0) return failed(`Setting attributes of ${name} failed (${failureText(result)})`);
      }
    }
    const changes = changesOf(call, p);
    return applied(changes, p.before === undefined ? `File ${name} created` : `File ${name} updated`);
  },
});
