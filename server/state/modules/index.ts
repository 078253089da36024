import type { ModuleRegistry, StateFunction } from '../types.js';
import { cmdRun } from './cmd.js';
import { fileBlockreplace } from './file-blockreplace.js';
import { fileManaged } from './file-managed.js';
import { fileAbsent, fileDirectory, fileSymlink } from './file-paths.js';
import { groupPresent } from './group.js';
import { kmodPresent } from './kmod.js';
import { mountMounted } from './mount.js';
import { pkgInstalled, pkgLatest, pkgRemoved } from './pkg.js';
import { serviceDead, serviceDisabled, serviceEnabled, serviceRunning } from './service.js';
import { sysctlPresent } from './sysctl.js';
import { userPresent } from './user.js';

/** The built-in state functions, keyed 'module.function' as SLS files name them. */
const BUILTIN: ReadonlyArray<readonly [string, StateFunction]> = [
  ['pkg.installed', pkgInstalled],
  ['pkg.removed', pkgRemoved],
  ['pkg.latest', pkgLatest],
  ['file.managed', fileManaged],
  ['file.directory', fileDirectory],
  ['file.absent', fileAbsent],
  ['file.symlink', fileSymlink],
  ['file.blockreplace', fileBlockreplace],
  ['service.running', serviceRunning],
  ['service.enabled', serviceEnabled],
  ['service.dead', serviceDead],
  ['service.disabled', serviceDisabled],
  ['cmd.run', cmdRun],
  ['sysctl.present', sysctlPresent],
  ['kmod.present', kmodPresent],
  ['user.present', userPresent],
  ['group.present', groupPresent],
  ['mount.mounted', mountMounted],
];

export function builtinModules(): ModuleRegistry {
  return new Map(BUILTIN);
}

export function knownFunctions(): string[] {
  return BUILTIN.map(([name]) => name).sort();
}
