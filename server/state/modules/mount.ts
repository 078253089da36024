import { z } from 'zod';

import { RackseedError } from '../../model/errors.js';
import type { CheckOutcome, StateFunction } from '../types.js';
import { absolutePath, argsSchema, listOrCsv, nonNegativeInt } from './args.js';
import { applied, defineFunction, failed, inSync, wouldChange, type Call } from './define.js';
import { checkPathName } from './file-managed.js';
import { failureText, probe, run, section } from './run.js';
import { shellQuote } from './shell.js';

/**
 * mount.mounted: `findmnt` for what is mounted, /etc/fstab for what persists, in one probe. Missing options cause a
 * remount. A mount point that holds a different device or type is an error, not something to unmount silently.
 * Option values the kernel rewrites (tmpfs `size=1G` shows as `size=1048576k`) are compared by key only.
 */

const schema = argsSchema({
  device: z.string().min(1).refine((s) => !/\s/.test(s), 'may not contain whitespace'),
  fstype: z.string().regex(/^[A-Za-z0-9_.+-]+$/, 'expected a file system type such as ext4'),
  opts: listOrCsv.optional(),
  persist: z.boolean().optional(),
  mkmnt: z.boolean().optional(),
  dump: nonNegativeInt.optional(),
  pass_num: nonNegativeInt.optional(),
  config: absolutePath.optional(),
});
type Args = z.output<typeof schema>;

/** Options that live only in fstab (or mean "the default") and never show in the mounted options. */
const FSTAB_ONLY = /^(defaults|auto|noauto|nofail|_netdev|user|users|nouser|owner|group|comment=.*|x-.*|bg|fg|retry=.*|intr|nointr)$/;

/**
 * Kernel defaults the mounted options show only by their opposite: `exec` holds while `noexec` is absent. Compared
 * as present, they would remount the file system on every run.
 */
const DEFAULT_UNLESS_NEGATED: Readonly<Record<string, string>> = { exec: 'noexec', suid: 'nosuid', dev: 'nodev', async: 'sync', diratime: 'nodiratime' };

function optionHolds(option: string, current: ReadonlySet<string>): boolean {
  const negation = DEFAULT_UNLESS_NEGATED[option];
  return negation !== undefined ? !current.has(negation) : current.has(option.split('=')[0]!);
}

export function parseFindmnt(stdout: string): Record<string, string> | undefined {
  const line = stdout.split('\n').find((l) => l.trim() !== '');
  if (line === undefined) return undefined;
  const fields: Record<string, string> = {};
  for (const m of line.matchAll(/([A-Z:-]+)="((?:[^"\\]|\\.)*)"/g)) {
    fields[m[1]!] = m[2]!.replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))).replace(/\\(.)/g, '$1');
  }
  return fields;
}

export function deviceMatches(device: string, mounted: Record<string, string>): boolean {
  const tagged = /^(UUID|LABEL|PARTUUID|PARTLABEL)=(.*)$/.exec(device);
  if (tagged) return mounted[tagged[1]!] === tagged[2];
  const source = mounted.SOURCE ?? '';
  return source === device || source.startsWith(`${device}[`);
}

const fstabEscape = (field: string) => field.replace(/\\/g, '\\134').replace(/ /g, '\\040').replace(/\t/g, '\\011');
const fstabUnescape = (field: string) => field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));

export function fstabLine(path: string, args: Args): string {
  const opts = args.opts && args.opts.length > 0 ? args.opts.join(',') : 'defaults';
  return [fstabEscape(args.device), fstabEscape(path), args.fstype, opts, String(args.dump ?? 0), String(args.pass_num ?? 0)].join(' ');
}

/** The fstab text with one entry for path: `same` when already so, else the rewritten text. */
export function withFstabEntry(text: string, path: string, line: string): { same: boolean; text: string; existed: boolean } {
  const wanted = line.split(/\s+/).join(' ');
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let written = false;
  let existed = false;
  let same = false;
  for (const l of lines) {
    const fields = l.trim().split(/\s+/);
    if (!l.trim().startsWith('#') && fields.length >= 2 && fstabUnescape(fields[1]!) === path) {
      if (!existed) same = fields.join(' ') === wanted;
      else same = false;
      existed = true;
      if (!written) out.push(line);
      written = true;
      continue;
    }
    out.push(l);
  }
  if (!written) out.push(line);
  return { same: existed && same, text: `${out.join('\n')}\n`, existed };
}

interface MountPlan {
  mount: boolean;
  remount: string[];
  mkdir: boolean;
  fstab?: { text: string; existed: boolean };
}

const plans = new WeakMap<CheckOutcome, MountPlan>();
const wantedOpts = (args: Args) => (args.opts && args.opts.length > 0 ? args.opts : ['defaults']);

async function plan(call: Call<Args>): Promise<MountPlan> {
  const config = call.args.config ?? '/etc/fstab';
  const path = shellQuote(call.name);
  const sections = await probe(call.ctx, [
    ['mounted', `findmnt -n -P -o SOURCE,FSTYPE,OPTIONS,UUID,LABEL,PARTUUID,PARTLABEL --mountpoint ${path}`],
    ['fstab', `cat -- ${shellQuote(config)} 2>/dev/null`],
    ['dir', `test -d ${path}`],
  ]);
  const mounted = section(sections, 'mounted').code === 0 ? parseFindmnt(section(sections, 'mounted').out) : undefined;
  const result: MountPlan = { mount: mounted === undefined, remount: [], mkdir: section(sections, 'dir').code !== 0 && mounted === undefined };
  if (mounted !== undefined) {
    const fstype = mounted.FSTYPE ?? '';
    const typeOk = fstype === call.args.fstype || (call.args.fstype === 'nfs' && fstype === 'nfs4');
    if (!deviceMatches(call.args.device, mounted) || !typeOk) {
      throw new RackseedError('STATE_MODULE_FAILED', `${call.name} has ${mounted.SOURCE ?? '?'} (${fstype}) mounted, not ${call.args.device} (${call.args.fstype}); unmount it first`);
    }
    const current = new Set((mounted.OPTIONS ?? '').split(',').map((o) => o.split('=')[0] ?? o));
    result.remount = wantedOpts(call.args).filter((o) => !FSTAB_ONLY.test(o) && !optionHolds(o, current));
  }
  if (call.args.persist !== false) {
    const fstab = section(sections, 'fstab');
    const entry = withFstabEntry(fstab.code === 0 ? fstab.out : '', call.name, fstabLine(call.name, call.args));
    if (!entry.same) result.fstab = { text: entry.text, existed: entry.existed };
  }
  return result;
}

function changesOf(p: MountPlan): Record<string, unknown> {
  const changes: Record<string, unknown> = {};
  if (p.mount) changes.mount = true;
  if (p.remount.length > 0) changes.remount = p.remount.join(',');
  if (p.fstab) changes.persist = p.fstab.existed ? 'update' : 'new';
  return changes;
}

export const mountMounted: StateFunction = defineFunction({
  schema,
  checkName: checkPathName,
  async check(call) {
    const p = await plan(call);
    const changes = changesOf(p);
    if (Object.keys(changes).length === 0) return inSync(`${call.name} is mounted${call.args.persist === false ? '' : ' and persisted'}`);
    let comment = `${call.name} would be ${[p.mount ? 'mounted' : '', p.remount.length ? 'remounted' : '', p.fstab ? 'persisted' : ''].filter(Boolean).join(' and ')}`;
    if (p.mkdir && call.args.mkmnt !== true) comment += ' but the mount point is missing (set mkmnt: true)';
    const outcome = wouldChange(changes, comment);
    plans.set(outcome, p);
    return outcome;
  },
  async apply(call, checked) {
    const p = plans.get(checked) ?? (await plan(call));
    const path = shellQuote(call.name);
    const opts = shellQuote(wantedOpts(call.args).join(','));
    const commands: string[] = [];
    if (p.mount) {
      if (p.mkdir) {
        if (call.args.mkmnt !== true) return failed(`Mount point ${call.name} does not exist (set mkmnt: true)`);
        commands.push(`mkdir -p -- ${path}`);
      }
      commands.push(`mount -t ${shellQuote(call.args.fstype)} -o ${opts} -- ${shellQuote(call.args.device)} ${path}`);
    } else if (p.remount.length > 0) {
      commands.push(`mount -o ${shellQuote(`remount,${wantedOpts(call.args).join(',')}`)} -- ${path}`);
    }
    if (commands.length > 0) {
      const result = await run(call.ctx, commands.join(' && '));
      if (result.code !== 0) return failed(`Mounting ${call.name} failed (${failureText(result)})`);
    }
    if (p.fstab) await call.ctx.transport.writeFile(call.args.config ?? '/etc/fstab', p.fstab.text, { mode: '0644' });
    return applied(changesOf(p), `${call.name} ${[p.mount ? 'mounted' : '', p.remount.length ? 'remounted' : '', p.fstab ? 'persisted' : ''].filter(Boolean).join(' and ')}`);
  },
});
