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
import { BmcError, type BmcTarget, type PowerAction, type PowerDriver } from './types.js';

function expectOk(res: RedfishResponse, what: string): RedfishResponse {
  if (res.status >= 200 && res.status < 300) return res;
  const why = res.status === 401 ? 'authentication failed (check the BMC credentials)' : redfishErrorMessage(res.body) ?? `HTTP ${res.status}`;
  throw new BmcError(`${what}: ${why}`);
}

/**
 * Redfish power control: finds the ComputerSystem through /redfish/v1/Systems (the first member: one system per
 * BMC, as on ordinary servers), then POSTs #ComputerSystem.Reset or PATCHes its Boot override.
 */
export const redfishDriver: PowerDriver = async (target: BmcTarget, action: PowerAction, signal: AbortSignal) => {
  const base = redfishBaseUrl(target.bmc, target.credential);
  const call = (method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, headers?: Record<string, string>) =>
    redfishRequest(base, target.credential, method, path, signal, body, headers);

  const systems = expectOk(await call('GET', '/redfish/v1/Systems'), 'GET /redfish/v1/Systems');
  const systemPath = firstSystemPath(systems.body);
  const got = expectOk(await call('GET', systemPath), `GET ${systemPath}`);
  const system = got.body as ComputerSystem;
  const state = powerStateOf(system);

  const reset = async (kind: ResetKind) => {
    const path = resetTargetOf(system, systemPath);
    expectOk(await call('POST', path, { ResetType: resetTypeFor(system, kind) }), `POST ${path}`);
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
      await reset('cycle');
      return { state: 'on' };
    case 'pxe': {
      // Services with ETags refuse a PATCH without If-Match (412); the one from our GET is current enough.
      const etag = typeof got.headers.etag === 'string' ? { 'if-match': got.headers.etag } : undefined;
      expectOk(await call('PATCH', systemPath, pxeOnceBody(system, target.bootMode), etag), `PATCH ${systemPath}`);
      // A machine that is off does not restart; it is switched on.
      await reset(state === 'off' ? 'on' : 'cycle');
      return { state: 'on' };
    }
  }
};
