import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedNode } from '../../server/model/inventory.js';
import { isRackseedError } from '../../server/model/errors.js';
import { runBatch } from '../../server/power/batch.js';
import { credentialFor, parseBmcCredentials } from '../../server/power/credentials-file.js';
import { loadBmcCredentials } from '../../server/power/credentials.js';
import { powerNodes } from '../../server/power/power-nodes.js';
import { redfishDriver } from '../../server/power/redfish.js';
import type { BmcCredential, BmcTarget, PowerAction } from '../../server/power/types.js';
import { startFakeRedfish, type FakeRedfish } from '../support/redfish-server.js';

const SYSTEM = '/redfish/v1/Systems/437XR1138R2';
const RESET = `${SYSTEM}/Actions/ComputerSystem.Reset`;
const AUTH = `Basic ${Buffer.from('root:calvin').toString('base64')}`;

const servers: FakeRedfish[] = [];
async function bmc(opts: Parameters<typeof startFakeRedfish>[0] = {}): Promise<FakeRedfish> {
  const s = await startFakeRedfish(opts);
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const cred = (port: number, extra: Partial<BmcCredential> = {}): BmcCredential => ({ username: 'root', password: 'calvin', port, scheme: 'http', ...extra });
const target = (port: number, extra: Partial<BmcCredential> = {}): BmcTarget => ({ node: 'n1', bmc: { address: '127.0.0.1', kind: 'redfish' }, credential: cred(port, extra) });
const run = (t: BmcTarget, action: PowerAction) => redfishDriver(t, action, AbortSignal.timeout(10_000));

describe('Redfish driver against the DMTF mockup', () => {
  it('status: finds the system through /redfish/v1/Systems and reads PowerState, with basic auth', async () => {
    const s = await bmc();
    expect(await run(target(s.port), 'status')).toEqual({ state: 'on' });
    expect(s.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /redfish/v1/Systems', `GET ${SYSTEM}`]);
    expect(s.requests.every((r) => r.authorization === AUTH)).toBe(true);
    expect(s.changes()).toEqual([]);
  });

  it('on, off and cycle send exactly one ComputerSystem.Reset each, with the allowed ResetType', async () => {
    const s = await bmc();
    await run(target(s.port), 'off');
    expect(s.system.PowerState).toBe('Off');
    await run(target(s.port), 'on');
    await run(target(s.port), 'cycle');
    // The mockup allows no PowerCycle, so cycle falls back to ForceRestart.
    expect(s.changes().map((r) => [r.method, r.path, r.body])).toEqual([
      ['POST', RESET, { ResetType: 'ForceOff' }],
      ['POST', RESET, { ResetType: 'On' }],
      ['POST', RESET, { ResetType: 'ForceRestart' }],
    ]);
  });

  it('cycle prefers PowerCycle where the BMC allows it', async () => {
    const s = await bmc({ resetTypes: ['On', 'ForceOff', 'PowerCycle', 'ForceRestart'] });
    await run(target(s.port), 'cycle');
    expect(s.changes().map((r) => r.body)).toEqual([{ ResetType: 'PowerCycle' }]);
  });

  it('a BMC that lists no ResetType gets the ones every Reset implementation has (ForceRestart, not PowerCycle)', async () => {
    const s = await bmc({ resetTypesUnlisted: true });
    await run(target(s.port), 'cycle');
    await run(target(s.port), 'off');
    await run(target(s.port), 'on');
    expect(s.changes().map((r) => r.body)).toEqual([{ ResetType: 'ForceRestart' }, { ResetType: 'ForceOff' }, { ResetType: 'On' }]);
  });

  it('pxe: PATCHes a one-time Pxe boot override (with the ETag), then restarts a running machine', async () => {
    const s = await bmc();
    s.system.Boot = { ...s.system.Boot, BootSourceOverrideTarget: 'Hdd', BootSourceOverrideEnabled: 'Disabled' };
    expect(await run(target(s.port), 'pxe')).toEqual({ state: 'on' });
    expect(s.changes().map((r) => [r.method, r.path, r.body])).toEqual([
      ['PATCH', SYSTEM, { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } }],
      ['POST', RESET, { ResetType: 'ForceRestart' }],
    ]);
    expect(s.changes()[0]!.ifMatch).toBe('W/"1"');
    expect(s.system.Boot).toMatchObject({ BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' });
  });

  it('pxe waits for an asynchronous boot override (202 and a task monitor) before it restarts the machine', async () => {
    for (const outcome of ['done', 'completed'] as const) {
      const s = await bmc({ asyncPatch: { polls: 2, outcome } });
      expect(await run(target(s.port), 'pxe')).toEqual({ state: 'on' });
      const calls = s.requests.map((r) => `${r.method} ${r.path}`);
      const monitor = 'GET /redfish/v1/TaskService/TaskMonitors/1';
      expect(calls.slice(2)).toEqual([`PATCH ${SYSTEM}`, monitor, monitor, monitor, `POST ${RESET}`]);
      expect(s.system.Boot).toMatchObject({ BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' });
    }
  });

  it('pxe fails the node, and restarts nothing, when the boot override task ends in an exception', async () => {
    const s = await bmc({ asyncPatch: { polls: 1, outcome: 'exception' } });
    await expect(run(target(s.port), 'pxe')).rejects.toThrow(/PATCH \/redfish\/v1\/Systems\/437XR1138R2: the BMC's task ended Exception \(Critical\): Boot override rejected by the BIOS/);
    expect(s.changes().map((r) => r.method)).toEqual(['PATCH']);
  });

  it('an asynchronous reset is reported done only when its task is, and failed when its task fails', async () => {
    const monitor = 'GET /redfish/v1/TaskService/TaskMonitors/1';
    const s = await bmc({ asyncReset: { polls: 2, outcome: 'completed' } });
    expect(await run(target(s.port), 'off')).toEqual({ state: 'off' });
    expect(s.requests.map((r) => `${r.method} ${r.path}`).slice(2)).toEqual([`POST ${RESET}`, monitor, monitor, monitor]);
    expect(s.system.PowerState).toBe('Off');

    const busy = await bmc({ asyncReset: { polls: 1, outcome: 'exception' } });
    await expect(run(target(busy.port), 'cycle')).rejects.toThrow(/POST \S+ComputerSystem\.Reset: the BMC's task ended Exception \(Critical\): Power control is busy/);
  });

  it('a 202 without a task monitor is taken as accepted: there is nothing to poll, and the next step follows', async () => {
    const s = await bmc({ asyncPatch: { polls: 0, outcome: 'done', location: null } });
    expect(await run(target(s.port), 'pxe')).toEqual({ state: 'on' });
    expect(s.requests.map((r) => `${r.method} ${r.path}`).slice(2)).toEqual([`PATCH ${SYSTEM}`, `POST ${RESET}`]);
  });

  it('a task monitor that never finishes fails at the node\'s deadline; one on another host is not followed', async () => {
    const hung = await bmc({ asyncPatch: { polls: 1_000_000, outcome: 'done' } });
    await expect(redfishDriver(target(hung.port), 'pxe', AbortSignal.timeout(1_500))).rejects.toThrow(/did not finish in time|no answer in time/);
    expect(hung.changes().map((r) => r.method)).toEqual(['PATCH']);
    const elsewhere = await bmc({ asyncPatch: { polls: 0, outcome: 'done', location: 'http://192.0.2.1/redfish/v1/TaskService/TaskMonitors/1' } });
    await expect(run(target(elsewhere.port), 'pxe')).rejects.toThrow(/task monitor http:\/\/192\.0\.2\.1\/\S+ is on another host; not followed/);
    expect(elsewhere.changes().map((r) => r.method)).toEqual(['PATCH']);
  });

  it('no URL the BMC hands out sends its credentials to another host, however it is spelled', async () => {
    const other = await bmc({ host: '127.0.0.2' });
    const otherHost = `127.0.0.2:${other.port}`;
    // Same origin as the BMC on its face, but its path ("//host/...") names another host when resolved again.
    const opts = { asyncPatch: { polls: 0, outcome: 'done' as const, location: '' } };
    const s = await bmc(opts);
    opts.asyncPatch.location = `http://127.0.0.1:${s.port}//${otherHost}/redfish/v1/TaskService/TaskMonitors/1`;
    await expect(run(target(s.port), 'pxe')).rejects.toThrow(/not followed/);
    expect(s.changes().map((r) => r.method)).toEqual(['PATCH']);

    // The Reset action's target comes from the BMC too.
    const reset = s.system.Actions as Record<string, { target: string }>;
    for (const elsewhere of [`//${otherHost}${RESET}`, `http://${otherHost}${RESET}`]) {
      reset['#ComputerSystem.Reset']!.target = elsewhere;
      await expect(run(target(s.port), 'off')).rejects.toThrow(/not followed/);
    }
    expect(other.requests).toEqual([]);
    expect(s.system.PowerState).toBe('On');
  });

  it('cycle switches a machine that is off on (it was restarted, or refused, and reported on while it stayed off)', async () => {
    const s = await bmc({ powerState: 'Off' });
    expect(await run(target(s.port), 'cycle')).toEqual({ state: 'on' });
    expect(s.changes().map((r) => r.body)).toEqual([{ ResetType: 'On' }]);
    expect(s.system.PowerState).toBe('On');
  });

  it('a pxe whose reset never finishes times out saying where: the boot override was set, the reset was under way', async () => {
    const s = await bmc({ asyncReset: { polls: 1_000_000, outcome: 'done' } });
    const creds = parseBmcCredentials(`nodes:\n  a: { username: root, password: calvin, port: ${s.port}, scheme: http }\n`, 'bmc.yaml');
    const node = { name: 'a', group: 'gpu', macs: [], labels: {}, roles: [], kernelArgs: [], hardware: {}, installedBoot: 'local', uefiLoader: 'ipxe.efi', leaseSeconds: 3600, data: {}, bmc: { address: '127.0.0.1', kind: 'redfish' } } as unknown as ResolvedNode;
    const [result] = await powerNodes([node], 'pxe', creds, { concurrency: 1, timeoutMs: 1500 });
    expect(result).toMatchObject({ node: 'a', ok: false, timedOut: true });
    expect(result!.error).toBe(
      `no answer within 1.5 s, during POST ${RESET} (ForceRestart) (done: GET /redfish/v1/Systems; GET ${SYSTEM}; PATCH ${SYSTEM} (boot from the network once))`,
    );
  });

  it('pxe switches a machine that is off on instead of restarting it', async () => {
    const s = await bmc({ powerState: 'Off' });
    await run(target(s.port), 'pxe');
    expect(s.changes().map((r) => r.body)).toEqual([{ Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } }, { ResetType: 'On' }]);
    expect(s.system.PowerState).toBe('On');
  });

  it('pxe asks for the node\'s firmware mode (BootSourceOverrideMode) when the service has that property, else says nothing', async () => {
    const s = await bmc();
    await run({ ...target(s.port), bootMode: 'legacy' }, 'pxe');
    await run({ ...target(s.port), bootMode: 'uefi' }, 'pxe');
    expect(s.changes().filter((r) => r.method === 'PATCH').map((r) => r.body)).toEqual([
      { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once', BootSourceOverrideMode: 'Legacy' } },
      { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once', BootSourceOverrideMode: 'UEFI' } },
    ]);
    expect(s.system.Boot.BootSourceOverrideMode).toBe('UEFI');

    // An older service without the property would refuse it in the PATCH.
    const old = await bmc();
    delete old.system.Boot.BootSourceOverrideMode;
    await run({ ...target(old.port), bootMode: 'uefi' }, 'pxe');
    expect(old.changes()[0]!.body).toEqual({ Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } });

    const legacyOnly = await bmc();
    legacyOnly.system.Boot['BootSourceOverrideMode@Redfish.AllowableValues'] = ['Legacy'];
    await expect(run({ ...target(legacyOnly.port), bootMode: 'uefi' }, 'pxe')).rejects.toThrow(/does not offer UEFI as a boot override mode \(it allows Legacy\)/);
    expect(legacyOnly.changes()).toEqual([]);
  });

  it('a wrong password is reported as an authentication failure and changes nothing', async () => {
    const s = await bmc();
    await expect(run(target(s.port, { password: 'wrong' }), 'off')).rejects.toThrow(/authentication failed/);
    expect(s.changes()).toEqual([]);
  });

  it('HTTPS: a self-signed certificate is refused unless the credential says insecure: true', async () => {
    const s = await bmc({ https: true });
    await expect(run(target(s.port, { scheme: 'https' }), 'status')).rejects.toThrow(/SELF_SIGNED|certificate/i);
    expect(await run(target(s.port, { scheme: 'https', insecure: true }), 'status')).toEqual({ state: 'on' });
  });
});

describe('the boot mode a pxe override asks for', () => {
  it('is the inventory\'s bmc.boot_mode when set, else the one last seen, else none', async () => {
    const s = await bmc();
    const node = (name: string, bootMode?: 'uefi' | 'legacy'): ResolvedNode =>
      ({ name, group: 'gpu', macs: [], labels: {}, roles: [], kernelArgs: [], hardware: {}, installedBoot: 'local', uefiLoader: 'ipxe.efi', leaseSeconds: 3600, data: {}, bmc: { address: '127.0.0.1', kind: 'redfish', ...(bootMode ? { bootMode } : {}) } }) as ResolvedNode;
    const creds = parseBmcCredentials(`default: { username: root, password: calvin, port: ${s.port}, scheme: http }\n`, 'bmc.yaml');
    const seen = new Map([['pinned', 'uefi'], ['seen', 'uefi']] as const);
    for (const n of [node('pinned', 'legacy'), node('seen'), node('unknown')]) {
      const [result] = await powerNodes([n], 'pxe', creds, { concurrency: 1, timeoutMs: 5000, bootModesSeen: seen });
      expect(result).toMatchObject({ node: n.name, ok: true });
    }
    expect(s.changes().filter((r) => r.method === 'PATCH').map((r) => (r.body as { Boot: Record<string, unknown> }).Boot.BootSourceOverrideMode)).toEqual(['Legacy', 'UEFI', undefined]);
  });
});

describe('a BMC that never answers', () => {
  it('times out for that node alone; the others succeed', async () => {
    const good = await bmc();
    const hung = await bmc({ hang: true });
    const node = (name: string): ResolvedNode =>
      ({ name, group: 'gpu', macs: [], labels: {}, roles: [], kernelArgs: [], hardware: {}, installedBoot: 'local', uefiLoader: 'ipxe.efi', leaseSeconds: 3600, data: {}, bmc: { address: '127.0.0.1', kind: 'redfish' } }) as ResolvedNode;
    const creds = parseBmcCredentials(
      `nodes:\n  a: { username: root, password: calvin, port: ${good.port}, scheme: http }\n  b: { username: root, password: calvin, port: ${hung.port}, scheme: http }\n  c: { username: root, password: calvin, port: ${good.port}, scheme: http }\n`,
      'bmc.yaml',
    );
    const order: string[] = [];
    const results = await powerNodes([node('a'), node('b'), node('c')], 'status', creds, { concurrency: 2, timeoutMs: 1500 }, (r) => order.push(r.node));
    expect(results.map((r) => [r.node, r.ok, r.state, r.timedOut])).toEqual([
      ['a', true, 'on', undefined],
      ['b', false, undefined, true],
      ['c', true, 'on', undefined],
    ]);
    expect(results[1]!.error).toBe('no answer within 1.5 s, during GET /redfish/v1/Systems');
    // c waited for a free slot only, not for b: with 2 lanes, b's lane was busy, a's lane took c.
    expect(order.indexOf('c')).toBeLessThan(order.indexOf('b'));
    expect(hung.requests.map((r) => r.path)).toEqual(['/redfish/v1/Systems']);
    // The abandoned request was aborted: its connection does not linger.
    await expect.poll(() => hung.openConnections(), { timeout: 5000 }).toBe(0);
  });
});

describe('runBatch', () => {
  it('never runs more than `concurrency` calls at once and keeps input order', async () => {
    let inFlight = 0;
    let most = 0;
    const results = await runBatch([1, 2, 3, 4, 5, 6, 7], { concurrency: 3, timeoutMs: 5000 }, async (n) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 10 * (8 - n)));
      inFlight -= 1;
      return n * 10;
    });
    expect(most).toBe(3);
    expect(results.map((r) => (r.ok ? r.value : r.error))).toEqual([10, 20, 30, 40, 50, 60, 70]);
  });

  it('abandons a call that ignores its abort signal, and reports a thrown error per item', async () => {
    let sawAbort = false;
    const results = await runBatch(['hang', 'boom', 'fine'], { concurrency: 1, timeoutMs: 200 }, (item, signal) => {
      if (item === 'hang') {
        signal.addEventListener('abort', () => (sawAbort = true));
        return new Promise<string>(() => undefined);
      }
      if (item === 'boom') return Promise.reject(new Error('BMC said no'));
      return Promise.resolve('ok');
    });
    expect(results).toEqual([
      { ok: false, timedOut: true, error: 'no answer within 0.2 s', durationMs: expect.any(Number) },
      { ok: false, timedOut: false, error: 'BMC said no', durationMs: expect.any(Number) },
      { ok: true, value: 'ok', durationMs: expect.any(Number) },
    ]);
    expect(sawAbort).toBe(true);
  });
});

describe('BMC credentials file', () => {
  const TEXT = `default: { username: admin, password: d }
groups:
  gpu: { username: root, password: g, port: 624 }
nodes:
  gpu01: { username: root, password: n, insecure: true, cipher_suite: 3 }
`;
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'rackseed-bmc-creds-'));
    mkdirSync(path.join(dir, 'secrets'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('looks a node up by name, then group, then default', () => {
    const c = parseBmcCredentials(TEXT, 'bmc.yaml');
    expect(credentialFor(c, 'gpu01', 'gpu')).toEqual({ username: 'root', password: 'n', insecure: true, cipherSuite: 3 });
    expect(credentialFor(c, 'gpu02', 'gpu')).toEqual({ username: 'root', password: 'g', port: 624 });
    expect(credentialFor(c, 'head01', 'head')).toEqual({ username: 'admin', password: 'd' });
    expect(credentialFor(parseBmcCredentials('nodes: {}\n', 'x'), 'head01', 'head')).toBeUndefined();
  });

  it('rejects unknown keys without echoing any value', () => {
    const bad = () => parseBmcCredentials('nodes:\n  gpu01: { username: root, pasword: hunter2 }\n', 'bmc.yaml');
    expect(bad).toThrow(/bmc\.yaml: nodes\.gpu01/);
    try {
      bad();
    } catch (e) {
      expect(isRackseedError(e) && e.code).toBe('BMC_CREDENTIALS');
      expect((e as Error).message).not.toContain('hunter2');
    }
  });

  it('refuses a file that group or others can read, and loads it at 0600', () => {
    const file = path.join(dir, 'secrets', 'bmc.yaml');
    writeFileSync(file, TEXT);
    chmodSync(file, 0o640);
    expect(() => loadBmcCredentials(dir)).toThrow(/readable by group or others \(mode 640\).*chmod 600/);
    chmodSync(file, 0o600);
    expect(loadBmcCredentials(dir).nodes.get('gpu01')?.password).toBe('n');
  });

  it('a missing file means no credentials, not an error', () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'rackseed-bmc-none-'));
    try {
      const c = loadBmcCredentials(empty);
      expect(credentialFor(c, 'a', 'b')).toBeUndefined();
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
