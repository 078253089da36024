import type { Bmc, BmcBootMode } from '../model/inventory.js';

/** What `rackseed power` can ask of a BMC. `pxe` = boot from the network once, then power cycle (or on). */
export const POWER_ACTIONS = ['status', 'on', 'off', 'cycle', 'pxe'] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];

/** Actions that stop or restart a running machine: they need explicit confirmation (`--yes`, `confirm: true`). */
export const DISRUPTIVE_POWER_ACTIONS: readonly PowerAction[] = ['off', 'cycle', 'pxe'];

export function isPowerAction(v: unknown): v is PowerAction {
  return typeof v === 'string' && (POWER_ACTIONS as readonly string[]).includes(v);
}

/** The chassis power as the BMC reports it; `unknown` for transitional or vendor-specific answers. */
export type PowerState = 'on' | 'off' | 'unknown';

/** The outcome of one action on one node's BMC. Every targeted node gets exactly one. */
export interface PowerResult {
  node: string;
  ok: boolean;
  /** Power state after the action (as reported, or as requested when the BMC accepted it). */
  state?: PowerState;
  error?: string;
  /** True when the BMC did not answer within the per-call timeout. */
  timedOut?: boolean;
  durationMs: number;
}

/** A BMC login. A secret: kept in <dataDir>/secrets/bmc.yaml, never in the inventory. */
export interface BmcCredential {
  username: string;
  password: string;
  /** UDP port (IPMI, default 623) or TCP port (Redfish, default 443). */
  port?: number;
  /** Redfish only: accept a self-signed certificate. */
  insecure?: boolean;
  /** Redfish only: plain HTTP, for emulators and labs. Default https. */
  scheme?: 'https' | 'http';
  /** IPMI only: the RMCP+ cipher suite (ipmitool -C); unset = let ipmitool negotiate. */
  cipherSuite?: number;
}

/** Everything a driver needs to act on one BMC. */
export interface BmcTarget {
  node: string;
  bmc: Bmc;
  credential: BmcCredential;
  /** The firmware mode a `pxe` override asks for: the inventory's, else the one last seen; unset = say nothing. */
  bootMode?: BmcBootMode;
}

/**
 * One protocol (IPMI, Redfish): performs one action on one BMC. It must stop its work when `signal` aborts (kill
 * the child, abort the request); the batch runner does not wait for it either way.
 */
export type PowerDriver = (target: BmcTarget, action: PowerAction, signal: AbortSignal, step?: StepReporter) => Promise<{ state?: PowerState }>;

/**
 * Told each step of an action as it begins ("chassis bootdev pxe", "POST .../Reset (On)"), so a timeout can say
 * where it stopped: after a pxe's boot override, the next boot is from the network whatever became of its reset.
 */
export type StepReporter = (step: string) => void;

/** Thrown inside drivers for a BMC that answered with an error; the message goes into the node's PowerResult. */
export class BmcError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BmcError';
  }
}
