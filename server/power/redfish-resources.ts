import type { Bmc, BmcBootMode } from '../model/inventory.js';
import { BmcError, type BmcCredential, type PowerState } from './types.js';

/** The parts of a Redfish ComputerSystem that power control reads. Pure helpers over its JSON. */
export interface ComputerSystem {
  '@odata.id'?: string;
  PowerState?: string;
  Boot?: {
    'BootSourceOverrideTarget@Redfish.AllowableValues'?: string[];
    BootSourceOverrideMode?: string;
    'BootSourceOverrideMode@Redfish.AllowableValues'?: string[];
  };
  Actions?: { '#ComputerSystem.Reset'?: { target?: string; 'ResetType@Redfish.AllowableValues'?: string[] } };
}

export type ResetKind = 'on' | 'off' | 'cycle';

/** Preferred ResetType values, best first. PowerCycle is a real off-and-on; ForceRestart is the usual stand-in. */
const RESET_PREFERENCE: Record<ResetKind, string[]> = {
  on: ['On', 'ForceOn'],
  off: ['ForceOff'],
  cycle: ['PowerCycle', 'ForceRestart'],
};

/** https://<address>[:port]; `scheme: http` only when the credential asks for it (emulators, labs). */
export function redfishBaseUrl(bmc: Bmc, credential: BmcCredential): string {
  const scheme = credential.scheme ?? 'https';
  const host = bmc.address.includes(':') && !bmc.address.startsWith('[') ? `[${bmc.address}]` : bmc.address;
  return `${scheme}://${host}${credential.port !== undefined ? `:${credential.port}` : ''}`;
}

export function firstSystemPath(collection: unknown): string {
  const members = (collection as { Members?: Array<{ '@odata.id'?: unknown }> } | undefined)?.Members;
  const first = members?.[0]?.['@odata.id'];
  if (typeof first !== 'string') throw new BmcError('the Redfish service lists no ComputerSystem under /redfish/v1/Systems');
  return first;
}

export function powerStateOf(system: ComputerSystem): PowerState {
  if (system.PowerState === 'On') return 'on';
  if (system.PowerState === 'Off') return 'off';
  return 'unknown';
}

/**
 * Without ResetType@Redfish.AllowableValues (the annotation is optional): the type every Reset implementation has.
 * Services that leave the list out often lack PowerCycle and answer it with a 400.
 */
const RESET_UNLISTED: Record<ResetKind, string> = { on: 'On', off: 'ForceOff', cycle: 'ForceRestart' };

/** The ResetType to send, honouring ResetType@Redfish.AllowableValues when the service publishes it. */
export function resetTypeFor(system: ComputerSystem, kind: ResetKind): string {
  const allowed = system.Actions?.['#ComputerSystem.Reset']?.['ResetType@Redfish.AllowableValues'];
  const wanted = RESET_PREFERENCE[kind];
  if (!allowed) return RESET_UNLISTED[kind];
  const pick = wanted.find((t) => allowed.includes(t));
  if (!pick) throw new BmcError(`the BMC allows no ResetType for "${kind}" (wanted ${wanted.join(' or ')}; it allows ${allowed.join(', ') || 'none'})`);
  return pick;
}

export function resetTargetOf(system: ComputerSystem, systemPath: string): string {
  return system.Actions?.['#ComputerSystem.Reset']?.target ?? `${systemPath.replace(/\/+$/, '')}/Actions/ComputerSystem.Reset`;
}

export interface PxeOnceBody {
  Boot: { BootSourceOverrideTarget: 'Pxe'; BootSourceOverrideEnabled: 'Once'; BootSourceOverrideMode?: 'UEFI' | 'Legacy' };
}

const REDFISH_BOOT_MODE: Record<BmcBootMode, 'UEFI' | 'Legacy'> = { uefi: 'UEFI', legacy: 'Legacy' };

/**
 * The PATCH body that makes the next boot, and only that one, a network boot, in `mode` when one is known and the
 * service has the BootSourceOverrideMode property (older services reject properties they do not have).
 */
export function pxeOnceBody(system: ComputerSystem, mode?: BmcBootMode): PxeOnceBody {
  const allowed = system.Boot?.['BootSourceOverrideTarget@Redfish.AllowableValues'];
  if (allowed && !allowed.includes('Pxe')) throw new BmcError(`the BMC does not offer Pxe as a boot override (it allows ${allowed.join(', ')})`);
  const body: PxeOnceBody = { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } };
  if (mode === undefined || system.Boot?.BootSourceOverrideMode === undefined) return body;
  const wanted = REDFISH_BOOT_MODE[mode];
  const modes = system.Boot['BootSourceOverrideMode@Redfish.AllowableValues'];
  if (modes && !modes.includes(wanted)) throw new BmcError(`the BMC does not offer ${wanted} as a boot override mode (it allows ${modes.join(', ')})`);
  body.Boot.BootSourceOverrideMode = wanted;
  return body;
}
