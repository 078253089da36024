import type { ModuleContext } from '../types.js';
import type { InstallOptions, InstalledPackage, PackageBackend, PackageCandidate, PackageSpec } from './pkg-types.js';
import { versionMatches } from './pkg-version.js';
import { moduleFailure, run } from './run.js';
import { quoteAll, shellQuote } from './shell.js';

/** Debian and Ubuntu: dpkg-query to look, apt-get to act, apt-mark for holds. */

const APT_GET =
  'DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold';

const QUERY_FORMAT = '${binary:Package}\\t${Package}\\t${db:Status-Abbrev}\\t${Version}\\n';

export function dpkgQueryCommand(names: readonly string[]): string {
  // Unknown packages go to stderr and make the exit status 1; the ones found are still printed.
  return `dpkg-query -W -f='${QUERY_FORMAT}' -- ${quoteAll(names)}`;
}

/**
 * Parses dpkg-query lines `libc6:amd64<TAB>libc6<TAB>ii <TAB>2.36-9`. The second letter of the abbreviated status
 * is the package state ('i' installed, 'n' not, 'c' config files only, others half-way); the first is the wish,
 * 'h' for held. A name matches either the arch-qualified or the plain package name.
 */
export function parseDpkgQuery(stdout: string, names: readonly string[]): Map<string, InstalledPackage> {
  const found = new Map<string, InstalledPackage>();
  for (const line of stdout.split('\n')) {
    const [binary, plain, status, version] = line.split('\t');
    if (binary === undefined || plain === undefined || status === undefined || version === undefined) continue;
    const installed = status[1] === 'i' || status[1] === 'W' || status[1] === 't';
    if (!installed) continue;
    const info = { version: version.trim(), held: status[0] === 'h' };
    for (const name of names) if (name === binary || name === plain) found.set(name, info);
  }
  return found;
}

/** Parses `apt-cache policy` blocks: a `name:` header line, then `Installed:` and `Candidate:` ((none) = absent). */
export function parseAptPolicy(stdout: string, names: readonly string[]): Map<string, PackageCandidate> {
  const blocks = new Map<string, PackageCandidate>();
  let current: PackageCandidate | undefined;
  for (const line of stdout.split('\n')) {
    const header = /^(\S+):$/.exec(line);
    if (header) {
      current = {};
      blocks.set(header[1]!, current);
      continue;
    }
    const field = /^\s+(Installed|Candidate):\s*(\S+)/.exec(line);
    if (!field || !current) continue;
    const value = field[2] === '(none)' ? undefined : field[2];
    if (value === undefined) continue;
    if (field[1] === 'Installed') current.installed = value;
    else current.candidate = value;
  }
  const result = new Map<string, PackageCandidate>();
  for (const name of names) {
    // apt prints a native-arch package as `libc6:` even when asked for `libc6:amd64`.
    const block = blocks.get(name) ?? blocks.get(name.replace(/:[^:]*$/, ''));
    if (block) result.set(name, block);
  }
  return result;
}

function installFlags(options: InstallOptions): string {
  const flags: string[] = [];
  if (options.allowDowngrade) flags.push('--allow-downgrades');
  if (options.changeHeld) flags.push('--allow-change-held-packages');
  if (options.fromrepo !== undefined) flags.push(`-t ${shellQuote(options.fromrepo)}`);
  return flags.map((f) => ` ${f}`).join('');
}

export const aptBackend: PackageBackend = {
  family: 'debian',

  async queryInstalled(ctx: ModuleContext, names: readonly string[]) {
    // dpkg-query with no names lists every package: slow, and not what was asked.
    if (names.length === 0) return new Map();
    const result = await run(ctx, `LC_ALL=C ${dpkgQueryCommand(names)}`);
    // Exit 1 with "no packages found" is an answer (not installed); anything else (no dpkg at all) is not.
    if (result.code !== 0 && !/no packages found/.test(result.stderr)) throw moduleFailure('dpkg-query', result);
    return parseDpkgQuery(result.stdout, names);
  },

  async queryCandidates(ctx: ModuleContext, names: readonly string[]) {
    const result = await run(ctx, `LC_ALL=C apt-cache policy -- ${quoteAll(names)}`);
    if (result.code !== 0) throw moduleFailure('apt-cache policy', result);
    return parseAptPolicy(result.stdout, names);
  },

  installCommand(specs: readonly PackageSpec[], options: InstallOptions) {
    const words = specs.map((s) => (s.version === undefined ? s.name : `${s.name}=${s.version}`));
    return `${APT_GET}${installFlags(options)} install -- ${quoteAll(words)}`;
  },

  upgradeCommand(names: readonly string[], options: InstallOptions) {
    // `install` of an installed package upgrades it to the candidate; --only-upgrade would skip missing ones.
    return `${APT_GET}${installFlags(options)} install -- ${quoteAll(names)}`;
  },

  removeCommand(names: readonly string[], purge: boolean) {
    // The state names these packages, so a hold on them does not stop their removal.
    return `${APT_GET} --allow-change-held-packages ${purge ? 'purge' : 'remove'} -- ${quoteAll(names)}`;
  },

  holdCommand(names: readonly string[], hold: boolean) {
    return `apt-mark ${hold ? 'hold' : 'unhold'} -- ${quoteAll(names)}`;
  },

  refreshCommand() {
    return `${APT_GET} update`;
  },

  looksStale(stderr: string) {
    return /Unable to locate package|has no installation candidate|Failed to fetch|404\s+Not Found|Version '.*' for '.*' was not found/.test(stderr);
  },

  versionMatches,
};
