import type { ModuleContext } from '../types.js';
import type { InstallOptions, InstalledPackage, PackageBackend, PackageCandidate, PackageSpec } from './pkg-types.js';
import { versionMatches } from './pkg-version.js';
import { moduleFailure, probe, section } from './run.js';
import { quoteAll, shellQuote } from './shell.js';

/**
 * The RHEL family (Rocky, Alma, RHEL, Fedora with dnf 4): rpm to look, dnf to act. Holds use the versionlock
 * plugin (python3-dnf-plugin-versionlock), whose list file is read directly (starting dnf costs a second); without
 * the plugin a hold fails with dnf's own message. dnf 5's built-in versionlock (a TOML file) is not supported.
 */

const DNF = 'dnf -y -q';
export const VERSIONLOCK_LIST = '/etc/dnf/plugins/versionlock.list';

const RPM_FORMAT = '%{NAME}\\t%{ARCH}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n';

export function rpmQueryCommand(names: readonly string[]): string {
  // Not-installed packages print "package x is not installed" and count into the exit status.
  return `rpm -q --qf '${RPM_FORMAT}' -- ${quoteAll(names)}`;
}

/** Parses rpm lines `nginx<TAB>x86_64<TAB>1:1.20.1-14.el9`; a name matches `nginx` or `nginx.x86_64`. */
export function parseRpmQuery(stdout: string, names: readonly string[], locks: string): Map<string, InstalledPackage> {
  const found = new Map<string, InstalledPackage>();
  for (const line of stdout.split('\n')) {
    const [name, arch, version] = line.split('\t');
    if (name === undefined || arch === undefined || version === undefined) continue;
    for (const wanted of names) {
      if (wanted === name || wanted === `${name}.${arch}`) found.set(wanted, { version: version.trim(), held: isLocked(locks, name) });
    }
  }
  return found;
}

/** versionlock.list lines are `name-[epoch:]version-release.arch` (a leading `!` excludes instead of locking). */
export function isLocked(locks: string, name: string): boolean {
  return locks.split('\n').some((line) => line.startsWith(`${name}-`) && /^(\d+:)?\d/.test(line.slice(name.length + 1)));
}

/** Parses `dnf check-update` lines `nginx.x86_64   1:1.20.1-16.el9   appstream`. */
export function parseCheckUpdate(stdout: string): Map<string, string> {
  const updates = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^(\S+)\.([^.\s]+)\s+(\S+)\s+\S+\s*$/.exec(line);
    if (m) {
      updates.set(m[1]!, m[3]!);
      updates.set(`${m[1]!}.${m[2]!}`, m[3]!);
    }
  }
  return updates;
}

function dnfFlags(options: InstallOptions): string {
  return options.fromrepo === undefined ? '' : ` --repo ${shellQuote(options.fromrepo)}`;
}

export const dnfBackend: PackageBackend = {
  family: 'redhat',

  async queryInstalled(ctx: ModuleContext, names: readonly string[]) {
    // rpm -q with no names is an error (exit 1), not an empty answer.
    if (names.length === 0) return new Map();
    const sections = await probe(ctx, [
      ['rpm', `LC_ALL=C ${rpmQueryCommand(names)}`],
      ['locks', `cat ${shellQuote(VERSIONLOCK_LIST)} 2>/dev/null`],
    ]);
    const rpm = section(sections, 'rpm');
    if (rpm.code !== 0 && !/is not installed/.test(rpm.out)) throw moduleFailure('rpm -q', { code: rpm.code, stdout: rpm.out, stderr: '' });
    return parseRpmQuery(rpm.out, names, section(sections, 'locks').out);
  },

  async queryCandidates(ctx: ModuleContext, names: readonly string[]) {
    const sections = await probe(ctx, [
      ['rpm', `LC_ALL=C ${rpmQueryCommand(names)}`],
      // Exit 100 means updates are available; 0 none; anything else is an error.
      ['updates', `LC_ALL=C dnf -q check-update -- ${quoteAll(names)}`],
    ]);
    const updates = section(sections, 'updates');
    if (updates.code !== 0 && updates.code !== 100) throw moduleFailure('dnf check-update', { code: updates.code, stdout: updates.out, stderr: '' });
    const installed = parseRpmQuery(section(sections, 'rpm').out, names, '');
    const available = parseCheckUpdate(updates.out);
    const result = new Map<string, PackageCandidate>();
    for (const name of names) {
      const have = installed.get(name)?.version;
      const next = available.get(name) ?? have;
      const entry: PackageCandidate = {};
      if (have !== undefined) entry.installed = have;
      // A package that is not installed has no candidate here: dnf will pick its newest at install time.
      if (next !== undefined) entry.candidate = next;
      result.set(name, entry);
    }
    return result;
  },

  installCommand(specs: readonly PackageSpec[], options: InstallOptions) {
    const words = specs.map((s) => (s.version === undefined ? s.name : `${s.name}-${s.version}`));
    // dnf install of an older version downgrades, so allowDowngrade needs no flag.
    return `${DNF}${dnfFlags(options)} install -- ${quoteAll(words)}`;
  },

  upgradeCommand(names: readonly string[], options: InstallOptions) {
    return `${DNF}${dnfFlags(options)} install -- ${quoteAll(names)} && ${DNF}${dnfFlags(options)} upgrade -- ${quoteAll(names)}`;
  },

  removeCommand(names: readonly string[]) {
    return `${DNF} remove -- ${quoteAll(names)}`;
  },

  holdCommand(names: readonly string[], hold: boolean) {
    return `${DNF} versionlock ${hold ? 'add' : 'delete'} -- ${quoteAll(names)}`;
  },

  refreshCommand() {
    return `${DNF} makecache`;
  },

  looksStale(stderr: string) {
    return /No match for argument|Cannot download|Failed to download/.test(stderr);
  },

  versionMatches,
};
