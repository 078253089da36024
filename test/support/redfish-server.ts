import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const FIXTURES = path.resolve(import.meta.dirname, '..', 'fixtures', 'redfish');
const SYSTEM_PATH = '/redfish/v1/Systems/437XR1138R2';
const TASK_MONITOR = '/redfish/v1/TaskService/TaskMonitors/1';

export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
  authorization?: string;
  ifMatch?: string;
}

export interface FakeRedfish {
  /** The TCP port (it listens on `host`, default 127.0.0.1): what a credential's port points at. */
  port: number;
  requests: RecordedRequest[];
  /** The ComputerSystem as the next GET will show it (PowerState, Boot). */
  system: Record<string, unknown> & { PowerState: string; Boot: Record<string, unknown> };
  /** Requests other than GET: what the BMC was asked to change. */
  changes(): RecordedRequest[];
  /** TCP connections currently open (a client that gave up on a hung BMC closes its own). */
  openConnections(): number;
  close(): Promise<void>;
}

export interface FakeRedfishOptions {
  /** Loopback address to listen on (default 127.0.0.1); distinct addresses let an inventory give each BMC its own. */
  host?: string;
  username?: string;
  password?: string;
  /** Accept connections and read requests, but never answer (a hung BMC). */
  hang?: boolean;
  /** Serve HTTPS with a throwaway self-signed certificate. */
  https?: boolean;
  /** Replace the mockup's ResetType@Redfish.AllowableValues. */
  resetTypes?: string[];
  /** Publishes no ResetType@Redfish.AllowableValues at all (the annotation is optional in Redfish). */
  resetTypesUnlisted?: boolean;
  /** The PowerState the system starts in (the mockup says "On"). */
  powerState?: 'On' | 'Off';
  /**
   * The Boot PATCH is asynchronous: answered 202 with a task monitor (Location, Retry-After 0) that answers 202
   * `polls` times, then the outcome: `done` (the operation's response; the override is applied), `completed` (a
   * Task, Completed/OK; applied) or `exception` (a Task, Exception/Critical, with a message; not applied).
   * `location: null` sends the 202 without a Location (and applies the change at once: nothing to poll).
   */
  asyncPatch?: AsyncOperation;
  /** The same for ComputerSystem.Reset: the power state changes only when the task monitor reports the outcome. */
  asyncReset?: AsyncOperation;
}

export interface AsyncOperation {
  polls: number;
  outcome: 'done' | 'completed' | 'exception';
  location?: string | null;
}

function fixture(urlPath: string): unknown {
  return JSON.parse(readFileSync(path.join(FIXTURES, urlPath.replace(/\/+$/, ''), 'index.json'), 'utf8'));
}

function selfSignedCert(): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-redfish-cert-'));
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A small Redfish service on 127.0.0.1 that serves the DMTF mockup (test/fixtures/redfish) and records every
 * request. Reset and the Boot PATCH change the in-memory ComputerSystem the way a BMC would. No Redfish simulator
 * is installable here, so this stands in for one; it checks what a client sends, not how a real BMC behaves.
 */
export async function startFakeRedfish(opts: FakeRedfishOptions = {}): Promise<FakeRedfish> {
  const username = opts.username ?? 'root';
  const password = opts.password ?? 'calvin';
  const expectedAuth = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  const system = fixture(SYSTEM_PATH) as FakeRedfish['system'];
  if (opts.powerState) system.PowerState = opts.powerState;
  const reset = (system.Actions as Record<string, Record<string, unknown>>)['#ComputerSystem.Reset']!;
  if (opts.resetTypes) reset['ResetType@Redfish.AllowableValues'] = opts.resetTypes;
  if (opts.resetTypesUnlisted) delete reset['ResetType@Redfish.AllowableValues'];
  let etag = 1;
  /** The asynchronous operation the task monitor reports on, until it has reported its outcome. */
  let pending: { operation: AsyncOperation; apply: () => void } | undefined;
  let monitorPolls = 0;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();

  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const urlPath = new URL(req.url ?? '/', 'http://x').pathname.replace(/\/+$/, '') || '/';
      requests.push({
        method: req.method ?? '',
        path: urlPath,
        body: text ? (JSON.parse(text) as unknown) : undefined,
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
        ...(typeof req.headers['if-match'] === 'string' ? { ifMatch: req.headers['if-match'] } : {}),
      });
      if (opts.hang) return; // never answer
      const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(body === undefined ? undefined : JSON.stringify(body));
      };
      const error = (status: number, message: string) => send(status, { error: { code: 'Base.1.0.GeneralError', message } });
      if (req.headers.authorization !== expectedAuth) return error(401, 'unauthorized');
      // Unlisted: the types it really takes are the common ones (such services often lack PowerCycle).
      const allowedResets = (reset['ResetType@Redfish.AllowableValues'] as string[] | undefined) ?? ['On', 'ForceOn', 'ForceOff', 'ForceRestart'];
      if (req.method === 'GET' && urlPath === SYSTEM_PATH) return send(200, system, { etag: `W/"${etag}"` });
      // Answers 202, then the operation's response (or a Task); the change happens only when the outcome is told.
      const accepted = (operation: AsyncOperation, apply: () => void) => {
        if (operation.location === null) {
          apply();
          return send(202);
        }
        pending = { operation, apply };
        monitorPolls = operation.polls;
        return send(202, undefined, { location: operation.location ?? TASK_MONITOR, 'retry-after': '0' });
      };
      if (req.method === 'GET' && urlPath === TASK_MONITOR && pending) {
        if (monitorPolls > 0) {
          monitorPolls -= 1;
          return send(202, undefined, { location: TASK_MONITOR, 'retry-after': '0' });
        }
        const { operation, apply } = pending;
        pending = undefined;
        if (operation.outcome !== 'exception') apply();
        if (operation.outcome === 'done') return send(200, system);
        if (operation.outcome === 'completed') return send(200, { '@odata.id': '/redfish/v1/TaskService/Tasks/1', TaskState: 'Completed', TaskStatus: 'OK' });
        const message = operation === opts.asyncReset ? 'Power control is busy' : 'Boot override rejected by the BIOS';
        return send(200, { '@odata.id': '/redfish/v1/TaskService/Tasks/1', TaskState: 'Exception', TaskStatus: 'Critical', Messages: [{ Message: message }] });
      }
      if (req.method === 'GET') {
        try {
          return send(200, fixture(urlPath));
        } catch {
          return error(404, `no resource ${urlPath}`);
        }
      }
      if (req.method === 'POST' && urlPath === reset.target) {
        const type = (JSON.parse(text) as { ResetType?: string }).ResetType ?? '';
        if (!allowedResets.includes(type)) return error(400, `ResetType ${type} not allowed`);
        const apply = () => (system.PowerState = ['ForceOff', 'GracefulShutdown'].includes(type) ? 'Off' : 'On');
        if (opts.asyncReset) return accepted(opts.asyncReset, apply);
        apply();
        return send(204);
      }
      if (req.method === 'PATCH' && urlPath === SYSTEM_PATH) {
        if (req.headers['if-match'] !== undefined && req.headers['if-match'] !== `W/"${etag}"`) return error(412, 'ETag mismatch');
        const patch = JSON.parse(text) as { Boot?: Record<string, unknown> };
        etag += 1;
        const apply = () => (system.Boot = { ...system.Boot, ...patch.Boot });
        if (opts.asyncPatch) return accepted(opts.asyncPatch, apply);
        apply();
        return send(200, system);
      }
      return error(405, `${req.method} ${urlPath} not supported`);
    });
  };

  const server = opts.https ? https.createServer(selfSignedCert(), handler) : http.createServer(handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, opts.host ?? '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    system,
    changes: () => requests.filter((r) => r.method !== 'GET'),
    openConnections: () => sockets.size,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
