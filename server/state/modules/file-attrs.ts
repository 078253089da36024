import type { ModuleContext } from '../types.js';
import { normalizeMode } from './args.js';
import { run } from './run.js';
import { shellQuote } from './shell.js';

/** What stat says about a path and its parent directory, read in one round trip. */
export interface PathStat {
  /** undefined when stat printed nothing usable (treated as "no opinion", never as a difference). */
  target?: { kind: 'file' | 'directory' | 'symlink' | 'other' | 'missing'; mode?: string; user?: string; group?: string; kindText: string };
  parentExists?: boolean;
}

export function parentOf(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const cut = trimmed.lastIndexOf('/');
  return cut <= 0 ? '/' : trimmed.slice(0, cut);
}

/** `follow` reads through symlinks (file.managed manages a link's target); without it a link is reported as such. */
export function statCommand(path: string, follow: boolean): string {
  const flag = follow ? '-L ' : '';
  return (
    `printf 'target=%s\\nparent=%s\\n' ` +
    `"$(stat ${flag}-c '%F|%a|%U|%G' -- ${shellQuote(path)} 2>/dev/null || echo missing)" ` +
    `"$(stat -L -c '%F' -- ${shellQuote(parentOf(path))} 2>/dev/null || echo missing)"`
  );
}

function kindOf(text: string): NonNullable<PathStat['target']>['kind'] {
  if (text === 'missing') return 'missing';
  if (text.startsWith('regular')) return 'file';
  if (text === 'directory') return 'directory';
  if (text === 'symbolic link') return 'symlink';
  return 'other';
}

/** Parses `target=regular file|644|root|root` and `parent=directory` (either may be `missing`). */
export function parseStat(stdout: string): PathStat {
  const result: PathStat = {};
  const target = /^target=(.*)$/m.exec(stdout)?.[1];
  if (target !== undefined && target !== '') {
    const [kindText = '', mode, user, group] = target.split('|');
    const entry: NonNullable<PathStat['target']> = { kind: kindOf(kindText), kindText };
    const normalized = mode === undefined ? undefined : normalizeMode(mode);
    if (normalized !== undefined) entry.mode = normalized;
    if (user !== undefined) entry.user = user;
    if (group !== undefined) entry.group = group;
    result.target = entry;
  }
  const parent = /^parent=(.*)$/m.exec(stdout)?.[1];
  if (parent !== undefined && parent !== '') result.parentExists = parent === 'directory';
  return result;
}

export async function statPath(ctx: ModuleContext, path: string, follow: boolean): Promise<PathStat> {
  return parseStat((await run(ctx, statCommand(path, follow))).stdout);
}

export interface WantedAttrs {
  mode?: string | undefined;
  user?: string | undefined;
  group?: string | undefined;
}

/** The attribute changes needed, Salt-shaped: `{mode: '0640', user: 'slurm'}`. A path that does not exist gets all. */
export function attrChanges(wanted: WantedAttrs, current: PathStat['target'], exists: boolean): Record<string, string> {
  const changes: Record<string, string> = {};
  const have = exists ? current : undefined;
  if (wanted.mode !== undefined && (!exists || (have?.mode !== undefined && have.mode !== wanted.mode))) changes.mode = wanted.mode;
  if (wanted.user !== undefined && (!exists || (have?.user !== undefined && have.user !== wanted.user))) changes.user = wanted.user;
  if (wanted.group !== undefined && (!exists || (have?.group !== undefined && have.group !== wanted.group))) changes.group = wanted.group;
  return changes;
}

/**
 * chown/chmod commands for attribute changes, to be joined with && (empty when there are none). chown comes first:
 * Linux clears setuid and setgid when a file changes owner, so a chmod before it would be undone (4755 read back as
 * 0755, and changed again on the next run). For the same reason an owner change re-applies `wantedMode`, the mode
 * the state asks for, even when the mode was already right.
 */
export function attrCommands(path: string, changes: Record<string, string>, wantedMode?: string): string[] {
  const commands: string[] = [];
  const ownerChanges = changes.user !== undefined || changes.group !== undefined;
  if (ownerChanges) {
    const owner = `${changes.user ?? ''}${changes.group !== undefined ? `:${changes.group}` : ''}`;
    commands.push(`chown ${shellQuote(owner)} -- ${shellQuote(path)}`);
  }
  const mode = changes.mode ?? (ownerChanges ? wantedMode : undefined);
  // Five digits: GNU chmod keeps a directory's setuid/setgid bits on a four-digit mode, so `0755` on a setgid
  // directory would read back 2755 and change again on every run. The leading zero clears them as the mode says.
  if (mode !== undefined) commands.push(`chmod ${shellQuote(mode.length === 4 ? `0${mode}` : mode)} -- ${shellQuote(path)}`);
  return commands;
}
