import { setTimeout as sleep } from 'node:timers/promises';
import { redfishErrorMessage, redfishRequest, type RedfishResponse } from './redfish-http.js';
import {
  firstSystemPath,
  powerStateOf,
  pxeOnceBody,
  redfishBaseUrl,
  resetTargetOf,
  resetTypeFor,
  type ComputerSystem,
  type ResetKind,
} from './redfish-resources.js';
import { BmcError, type BmcTarget, type PowerAction, type PowerDriver, type StepReporter } from './types.js';

function expectOk(res: RedfishResponse, what: string): RedfishResponse {
  if (res.status >= 200 && res.status < 300) return res;
  const why = res.status === 401 ? 'authentication failed (check the BMC credentials)' : redfishErrorMessage(res.body) ?? `HTTP ${res.status}`;
  throw new BmcError(`${what}: ${why}`);
}

/** Task states (Redfish Task.TaskState) that mean the operation has not finished. */
const TASK_RUNNING = new Set(['New', 'Starting', 'Running', 'Pending', 'Stopping', 'Suspended', 'Service', 'Interrupted', 'Cancelling']);
/** Between two polls of a task monitor: Retry-After when the BMC gives one, within these bounds. */
const POLL_DEFAULT_MS = 1000;
const POLL_MIN_MS = 200;
const POLL_MAX_MS = 5000;

function pollDelay(retryAfter: string | string[] | undefined): number {
  const seconds = typeof retryAfter === 'string' && /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) : undefined;
  return seconds === undefined ? POLL_DEFAULT_MS : Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, seconds * 1000));
}

type Call = (method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, headers?: Record<string, string>) => Promise<RedfishResponse>;

/**
 * A 202 Accepted means the operation is still pending (DSP0266, asynchronous operations): its outcome is read from
 * the task monitor the Location header names, polled until it stops answering 202 (or, when it points at a Task
 * resource, until the task's state is final). Only then is the next step taken: a reset sent before the boot
 * override took effect boots the disk while `power pxe` reports success. The per-node deadline (`signal`) bounds the
 * wait. A monitor on another origin is not followed: it would receive the BMC's credentials.
 */
async function settled(res: RedfishResponse, what: string, base: string, call: Call, signal: AbortSignal): Promise<void> {
  expectOk(res, what);
  const location = res.headers.location;
  if (res.status !== 202 || typeof location !== 'string' || location === '') return;
  const monitor = new URL(location, base);
  if (monitor.origin !== new URL(base).origin) throw new BmcError(`${what}: the BMC's task monitor ${location} is on another host; not followed`);
  const path = `${monitor.pathname}${monitor.search}`;
  let last = res;
  for (;;) {
    try {
      await sleep(pollDelay(last.headers['retry-after']), undefined, { signal });
    } catch {
      throw new BmcError(`${what}: the BMC's task ${path} did not finish in time`);
    }
    last = expectOk(await call('GET', path), `${what}: task ${path}`);
    if (last.status === 202) continue;
    const task = last.body as { TaskState?: unknown; TaskStatus?: unknown; Messages?: Array<{ Message?: unknown }> } | undefined;
    const state = typeof task?.TaskState === 'string' ? task.TaskState : undefined;
    if (state === undefined) return; // the operation's own response: done
    if (TASK_RUNNING.has(state)) continue;
    const message = task?.Messages?.map((m) => m.Message).find((m): m is string => typeof m === 'string');
    if (state === 'Completed' && task?.TaskStatus !== 'Critical') return;
    throw new BmcError(`${what}: the BMC's task ended ${state}${task?.TaskStatus ? ` (${String(task.TaskStatus)})` : ''}${message ? `: ${message}` : ''}`);
  }
}

/**
 * Redfish power control: finds the ComputerSystem through /redfish/v1/Systems (the first member: one system per
 * BMC, as on ordinary servers), then POSTs #ComputerSystem.Reset or PATCHes its Boot override.
 */
export const redfishDriver: PowerDriver = async (target: BmcTarget, action: PowerAction, signal: AbortSignal, step: StepReporter = () => undefined) => {
  const base = redfishBaseUrl(target.bmc, target.credential);
  const call: Call = (method, path, body, headers) => redfishRequest(base, target.credential, method, path, signal, body, headers);

  step('GET /redfish/v1/Systems');
  const systems = expectOk(await call('GET', '/redfish/v1/Systems'), 'GET /redfish/v1/Systems');
  const systemPath = firstSystemPath(systems.body);
  step(`GET ${systemPath}`);
  const got = expectOk(await call('GET', systemPath), `GET ${systemPath}`);
  const system = got.body as ComputerSystem;
  const state = powerStateOf(system);

  const reset = async (kind: ResetKind) => {
    const path = resetTargetOf(system, systemPath);
    const type = resetTypeFor(system, kind);
    step(`POST ${path} (${type})`);
    await settled(await call('POST', path, { ResetType: type }), `POST ${path}`, base, call, signal);
  };

  switch (action) {
    case 'status':
      return { state };
    case 'on':
      await reset('on');
      return { state: 'on' };
    case 'off':
      await reset('off');
      return { state: 'off' };
    case 'cycle':
      // A machine that is off is switched on: many services refuse a restart of it, and an operator restarting
      // machines wants them all running afterwards (as IPMI's cycle, which does nothing to such a machine).
      await reset(state === 'off' ? 'on' : 'cycle');
      return { state: 'on' };
    case 'pxe': {
      // Services with ETags refuse a PATCH without If-Match (412); the one from our GET is current enough.
      const etag = typeof got.headers.etag === 'string' ? { 'if-match': got.headers.etag } : undefined;
      step(`PATCH ${systemPath} (boot from the network once)`);
      await settled(await call('PATCH', systemPath, pxeOnceBody(system, target.bootMode), etag), `PATCH ${systemPath}`, base, call, signal);
      // A machine that is off does not restart; it is switched on.
      await reset(state === 'off' ? 'on' : 'cycle');
      return { state: 'on' };
    }
  }
};
