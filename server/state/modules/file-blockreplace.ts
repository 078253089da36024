import { z } from 'zod';

import { RackseedError } from '../../model/errors.js';
import type { CheckOutcome, StateFunction } from '../types.js';
import { argsSchema } from './args.js';
import { applied, defineFunction, failed, inSync, wouldChange, type Call } from './define.js';
import { statPath } from './file-attrs.js';
import { checkPathName } from './file-managed.js';
import { asText, contentDiff } from './file-text.js';

/**
 * file.blockreplace: the lines between a start and an end marker line are replaced by `content`; the rest of the
 * file is left alone. Markers match as substrings of a line (as in Salt), so `# BEGIN rackseed` finds the line
 * `# BEGIN rackseed -- do not edit`. Without markers the block is appended or prepended when asked, else it fails.
 */

const schema = argsSchema({
  marker_start: z.string().min(1).optional(),
  marker_end: z.string().min(1).optional(),
  content: z.union([z.string(), z.array(z.string())]).optional(),
  append_if_not_found: z.boolean().optional(),
  prepend_if_not_found: z.boolean().optional(),
  show_changes: z.boolean().optional(),
});
type Args = z.output<typeof schema>;

export const DEFAULT_MARKER_START = '#-- start managed zone --';
export const DEFAULT_MARKER_END = '#-- end managed zone --';

export interface BlockOptions {
  markerStart: string;
  markerEnd: string;
  content: string;
  append: boolean;
  prepend: boolean;
}

/** The new text, or an error message when the markers are missing or unbalanced. */
export function replaceBlock(text: string, o: BlockOptions): { text: string } | { error: string } {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const block = o.content === '' ? [] : o.content.replace(/\n$/, '').split('\n');
  const start = lines.findIndex((l) => l.includes(o.markerStart));
  if (start >= 0) {
    const endOffset = lines.slice(start + 1).findIndex((l) => l.includes(o.markerEnd));
    if (endOffset < 0) return { error: `found the start marker "${o.markerStart}" but no end marker "${o.markerEnd}" after it` };
    const end = start + 1 + endOffset;
    return { text: `${[...lines.slice(0, start + 1), ...block, ...lines.slice(end)].join('\n')}\n` };
  }
  const whole = [o.markerStart, ...block, o.markerEnd];
  if (o.append) return { text: `${[...lines, ...whole].join('\n')}\n` };
  if (o.prepend) return { text: `${[...whole, ...lines].join('\n')}\n` };
  return { error: `markers "${o.markerStart}" / "${o.markerEnd}" not found (set append_if_not_found or prepend_if_not_found)` };
}

interface BlockPlan {
  before: Buffer;
  after: Buffer;
  attrs: { mode?: string; owner?: string; group?: string };
  /** The file does not exist (yet): a dry run predicts the block against an empty file, apply fails. */
  missing: boolean;
}

const plans = new WeakMap<CheckOutcome, BlockPlan>();

async function plan(call: Call<Args>): Promise<BlockPlan | undefined> {
  const [read, stat] = await Promise.all([call.ctx.transport.readFile(call.name), statPath(call.ctx, call.name, true)]);
  // The usual pattern creates the file in a required state (file.managed with replace: false), which a dry run has
  // not run: predict against an empty file rather than failing the dry run for a file apply will have.
  const missing = read === undefined;
  const before = read ?? Buffer.alloc(0);
  const text = asText(before);
  if (text === undefined) throw new RackseedError('STATE_MODULE_FAILED', `${call.name} is not a text file`);
  const content = Array.isArray(call.args.content) ? call.args.content.join('\n') : (call.args.content ?? '');
  const replaced = replaceBlock(text, {
    markerStart: call.args.marker_start ?? DEFAULT_MARKER_START,
    markerEnd: call.args.marker_end ?? DEFAULT_MARKER_END,
    content,
    append: call.args.append_if_not_found === true,
    prepend: call.args.prepend_if_not_found === true,
  });
  if ('error' in replaced) throw new RackseedError('STATE_MODULE_FAILED', `${call.name}: ${replaced.error}`);
  if (replaced.text === text && !missing) return undefined;
  const t = stat.target;
  const attrs = { ...(t?.mode ? { mode: t.mode } : {}), ...(t?.user ? { owner: t.user } : {}), ...(t?.group ? { group: t.group } : {}) };
  return { before, after: Buffer.from(replaced.text, 'utf8'), attrs, missing };
}

export const fileBlockreplace: StateFunction = defineFunction({
  schema,
  checkName: checkPathName,
  crossCheck: (args) => (args.append_if_not_found === true && args.prepend_if_not_found === true ? ['prepend_if_not_found: not allowed together with append_if_not_found'] : []),
  async check(call) {
    const p = await plan(call);
    if (p === undefined) return inSync(`Block in ${call.name} is in the correct state`);
    const comment = p.missing ? `Block in ${call.name} would be added (the file does not exist yet: a state before this one must create it)` : `Block in ${call.name} would be updated`;
    const outcome = wouldChange({ diff: contentDiff(call.name, p.before, p.after, call.args.show_changes !== false) }, comment);
    plans.set(outcome, p);
    return outcome;
  },
  async apply(call, checked) {
    const p = plans.get(checked) ?? (await plan(call));
    if (p === undefined) return applied({}, `Block in ${call.name} is in the correct state`);
    if (p.missing) return failed(`${call.name} does not exist (create it first, e.g. file.managed with replace: false, and require that state)`);
    // The atomic replace makes a new file: keep the old one's mode and owner.
    await call.ctx.transport.writeFile(call.name, p.after, p.attrs);
    return applied({ diff: contentDiff(call.name, p.before, p.after, call.args.show_changes !== false) }, `Block in ${call.name} updated`);
  },
});
