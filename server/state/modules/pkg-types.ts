import type { ModuleContext } from '../types.js';

/** One package as a state asks for it: `nginx`, or `nginx` pinned to a version. */
export interface PackageSpec {
  name: string;
  version?: string;
}

export interface InstalledPackage {
  version: string;
  held: boolean;
}

export interface PackageCandidate {
  installed?: string;
  /** The version an install or upgrade would bring; undefined when the repositories have none. */
  candidate?: string;
}

export interface InstallOptions {
  fromrepo?: string;
  /** A pin may be older than what is installed. */
  allowDowngrade: boolean;
  /** Some of the named packages are held: the state names them, so it may change them (apt refuses otherwise). */
  changeHeld: boolean;
}

/**
 * What pkg.* needs from a package manager. Queries are single commands (one round trip for any number of
 * packages); the command builders return shell text with every value quoted.
 */
export interface PackageBackend {
  readonly family: string;
  queryInstalled(ctx: ModuleContext, names: readonly string[]): Promise<Map<string, InstalledPackage>>;
  /** The installed and candidate versions, for pkg.latest. */
  queryCandidates(ctx: ModuleContext, names: readonly string[]): Promise<Map<string, PackageCandidate>>;
  installCommand(specs: readonly PackageSpec[], options: InstallOptions): string;
  /** Brings the named (installed) packages to their candidate version. */
  upgradeCommand(names: readonly string[], options: InstallOptions): string;
  removeCommand(names: readonly string[], purge: boolean): string;
  holdCommand(names: readonly string[], hold: boolean): string;
  refreshCommand(): string;
  /** True when an install failure looks like stale package lists (worth one refresh and retry). */
  looksStale(stderr: string): boolean;
  /** True when the installed version satisfies a pin. */
  versionMatches(installed: string, wanted: string): boolean;
}
