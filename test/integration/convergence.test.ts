/**
 * Automatic convergence against real sshd targets (test/support/ssh-target.ts: Debian 12 trees in their own network,
 * PID and mount namespaces), with the real state engine, the real readiness engine and a real SQLite store: nodes in
 * `installed` are configured and checked with no operator action, an unreachable node is retried until it answers,
 * a failing state is recorded once and not retried, and a role change re-converges the node. The first-boot callback
 * is exercised end to end: the installer's own shell functions write the unit's files from a rendered plan, and the
 * script they write calls the real POST /node/v1/booted.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createConnection, createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallbackTokens } from '../../server/auth/callback-token.js';
import { NodeTokens } from '../../server/auth/node-token.js';
import { createLogger } from '../../server/log.js';
import type { LifecycleEvent } from '../../server/model/lifecycle.js';
import type { ResolvedNode } from '../../server/model/inventory.js';
import { nodeRoutes } from '../../server/net/http/node-routes.js';
import { renderPlan } from '../../server/protocol/plan.js';
import { ConvergenceService } from '../../server/services/convergence.js';
import { tcpProbe } from '../../server/services/convergence-probe.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { NodeIdentity } from '../../server/services/node-identity.js';
import { ReadinessService } from '../../server/services/readiness-service.js';
import { StateService } from '../../server/services/state-service.js';
import { openSshTransport } from '../../server/state/transport/ssh.js';
import { openStore } from '../../server/store/index.js';
import type { ObservedStore, Run } from '../../server/store/types.js';
import { startSshTargets, type SshTarget, type SshTargets } from '../support/ssh-target.js';
import { waitFor } from '../support/wait.js';
import { unusedLoopbackPort } from '../support/ports.js';

const run = promisify(execFile);
const SLS = path.resolve(import.meta.dirname, '../fixtures/sls-converge');
const INSTALLER_LIB = path.resolve(import.meta.dirname, '../../images/installer/lib');
const NAMES = { probed: 'conv01', late: 'conv02', broken: 'conv03' };

let lab: SshTargets;
let work: string;
let store: ObservedStore;
let inventory: InventoryService;
let convergence: ConvergenceService;
let http: Server;
let baseUrl: string;
let callbackTokens: CallbackTokens;
/** conv02's SSH port: nothing listens on it until the test "boots" the node by opening a relay there. */
let latePort: number;
let lateRelay: NetServer | undefined;
const lateSockets = new Set<Socket>();

const target = (name: string): SshTarget => lab.targets.find((t) => t.name === name)!;

function inventoryYaml(webRoles: string): string {
  const node = (name: string, i: number, group: string) => `  - { name: ${name}, mac: "02:00:00:00:0c:0${i}", ip: ${target(name).ip}, group: ${group} }`;
  return [
    'cluster: { name: conv }',
    'groups:',
    `  web: { roles: [${webRoles}] }`,
    '  broken: { roles: [base, broken] }',
    'nodes:',
    node(NAMES.probed, 1, 'web'),
    node(NAMES.late, 2, 'web'),
    node(NAMES.broken, 3, 'broken'),
    '',
  ].join('\n');
}

/** Where the test process reaches a node's sshd: the target's loopback relay, or conv02's late port. */
function sshPortOf(node: ResolvedNode): number {
  return node.name === NAMES.late ? latePort : target(node.name).port;
}

const transportFor = async (node: ResolvedNode) => {
  const t = target(node.name);
  return openSshTransport({ target: node.name, host: '127.0.0.1', port: sshPortOf(node), username: 'root', privateKey: t.privateKey, knownHostKey: t.hostKeyLine, connectTimeoutMs: 5_000 });
};


/** "sshd comes up": relays the late port to conv02's real sshd. */
async function bootLateNode(): Promise<void> {
  const upstreamPort = target(NAMES.late).port;
  lateRelay = createServer((client) => {
    const upstream = createConnection(upstreamPort, '127.0.0.1');
    lateSockets.add(client);
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => {
      client.destroy();
      upstream.destroy();
      lateSockets.delete(client);
    };
    for (const s of [client, upstream]) {
      s.on('error', done);
      s.on('close', done);
    }
  });
  await new Promise<void>((resolve, reject) => {
    lateRelay!.once('error', reject);
    lateRelay!.listen(latePort, '127.0.0.1', () => resolve());
  });
}

async function put(node: string, events: LifecycleEvent[]): Promise<void> {
  for (const event of events) {
    const r = await store.recordEvent({ node, event });
    if (!r.ok) throw new Error(`${node}: ${r.error}`);
  }
}

const applyRuns = async (node: string): Promise<Run[]> => (await store.listRuns({ node, kind: 'apply' })).sort((a, b) => a.startedAt - b.startedAt);
const readinessRuns = async (node: string): Promise<Run[]> => store.listRuns({ node, kind: 'readiness' });
const trail = async (node: string): Promise<string[]> => (await store.listEvents({ node })).map((e) => e.event.type);
const stateOf = async (node: string) => (await store.getNode(node))?.state;

beforeAll(async () => {
  lab = await startSshTargets(3, { names: [NAMES.probed, NAMES.late, NAMES.broken] });
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-convergence-'));
  latePort = await unusedLoopbackPort();
  store = await openStore({ kind: 'sqlite', path: path.join(work, 'rackseed.db') });
  await store.migrate();
  writeFileSync(path.join(work, 'inventory.yaml'), inventoryYaml('base, web'));
  const log = createLogger('silent');
  inventory = new InventoryService(path.join(work, 'inventory.yaml'), log);
  const identity = new NodeIdentity(path.join(work, 'data'));
  const states = new StateService({
    inventory,
    store,
    identity,
    settings: { roots: [SLS], pillarDir: path.join(work, 'pillar'), concurrency: 4, commandTimeoutMs: 60_000, connectTimeoutMs: 5_000, sshPort: 22 },
    log,
    transportFor,
  });
  const readiness = new ReadinessService({ inventory, store, settings: { concurrency: 4, commandTimeoutMs: 30_000, connectTimeoutMs: 5_000, sshPort: 22 }, log, transportFor });
  convergence = new ConvergenceService({
    inventory,
    store,
    states,
    readiness,
    // Short waits so the test does not sit through production backoff; many attempts so the late node outlasts them.
    settings: { enabled: true, probeIntervalMs: 300, maxAttempts: 40, backoffBaseMs: 200, backoffMaxMs: 1_000, concurrency: 4, sshPort: 22 },
    log,
    probe: (node) => tcpProbe('127.0.0.1', sshPortOf(node), 1_000),
  });

  callbackTokens = new CallbackTokens('convergence-test-key-'.repeat(3));
  const app = express();
  app.use('/node/v1', nodeRoutes({ tokens: new NodeTokens('unused-node-token-key'.repeat(2)), store, log, booted: { callbackTokens, converge: (node) => convergence.request(node, 'booted') } }));
  http = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  baseUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

  // Each node as its installer leaves it: installed, not yet configured.
  for (const name of Object.values(NAMES)) await put(name, [{ type: 'assigned', group: 'web' }, { type: 'provision_started' }, { type: 'installed' }]);
  await convergence.start();
}, 300_000);

afterAll(async () => {
  await convergence?.close();
  if (http) {
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  }
  for (const s of lateSockets) s.destroy();
  if (lateRelay) await new Promise<void>((resolve) => lateRelay!.close(() => resolve()));
  await store?.close();
  await lab?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
}, 60_000);

describe('automatic convergence after install', () => {
  it('an installed node whose SSH answers the probe is configured and checked to ready, unasked', async () => {
    const name = NAMES.probed;
    await waitFor(`${name} ready`, async () => (await stateOf(name)) === 'ready', 120_000, 200);
    expect(await trail(name)).toEqual(['assigned', 'provision_started', 'installed', 'configure_started', 'ready']);
    const applies = await applyRuns(name);
    expect(applies).toHaveLength(1);
    expect(applies[0]!.result).toBe('changed');
    const readiness = await readinessRuns(name);
    expect(readiness).toHaveLength(1);
    expect(readiness[0]).toMatchObject({ result: 'success', summary: { ready: true, failing: [] } });
    expect(target(name).sh('cat /srv/conv/web.txt').stdout).toBe(`web role on ${name}\n`);
    expect(target(name).sh(`grep -c '${target(name).ip}' /etc/hosts`).stdout.trim()).toBe('1');
  });

  it('a failing state: failed with stage states, naming the state and the run; not retried', async () => {
    const name = NAMES.broken;
    await waitFor(`${name} failed`, async () => (await stateOf(name)) === 'failed', 120_000, 200);
    await convergence.whenIdle();
    const status = await store.getNode(name);
    const applies = await applyRuns(name);
    expect(applies).toHaveLength(1);
    expect(status?.stage).toBe('states');
    // The command's exit code and own explanation (its stderr), not `Command "<script>" failed`.
    expect(status?.reason).toBe(`states: 1 failed: conv-broken: exit 3: this role is broken on purpose (run ${applies[0]!.id})`);
    expect(await trail(name)).toEqual(['assigned', 'provision_started', 'installed', 'configure_started', 'failed']);
    // Readiness is not run on a node whose states failed.
    expect(await readinessRuns(name)).toEqual([]);
    // Another probe round does not pick it up again (it is failed, not installed), and nothing is pending.
    await convergence.probeInstalled();
    await convergence.whenIdle();
    expect(convergence.status()).toEqual([]);
    expect(await applyRuns(name)).toHaveLength(1);
  });
});

describe('the first-boot callback', () => {
  it('POST /node/v1/booted without a valid callback token is 401 and triggers nothing', async () => {
    const name = NAMES.late;
    const forged = [
      new CallbackTokens('some-other-key-entirely-'.repeat(2)).issue(name, 'booted'),
      callbackTokens.issue(NAMES.probed, 'booted').replace(NAMES.probed, name),
      new NodeTokens('convergence-test-key-'.repeat(3)).issue(name, '52:54:00:00:00:01', 600),
      '',
    ];
    for (const token of forged) {
      const r = await fetch(`${baseUrl}/node/v1/booted`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });
      expect(r.status, token).toBe(401);
    }
    expect(convergence.status().map((s) => s.node)).not.toContain(name);
    expect(await applyRuns(name)).toEqual([]);
    expect(await stateOf(name)).toBe('installed');
  });

  it("the installer writes the unit from the plan; its script's call converges the node, retrying until sshd is up", async () => {
    const name = NAMES.late;
    const root = path.join(work, 'target-root');
    const plan = renderPlan({
      node: { name, mac: '02:00:00:00:0c:02', installedBoot: 'kernel', kernelArgs: [], disk: { device: '/dev/vda', table: 'gpt', partitions: [{ mount: '/', size: 'rest', fs: 'ext4' }] } },
      image: { name: 'tiny', sha256: 'a'.repeat(64), size: 1 },
      urls: { torrent: `${baseUrl}/files/t.torrent`, http: `${baseUrl}/files/t`, report: `${baseUrl}/node/v1/report` },
      keys: { hostPrivate: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n', hostPublic: target(name).hostKeyLine, authorized: [target(name).hostKeyLine] },
      callback: { bootedUrl: `${baseUrl}/node/v1/booted`, token: callbackTokens.issue(name, 'booted') },
    });
    writeFileSync(path.join(work, 'plan'), plan);
    // The installer's own functions, as /init runs them (its /run paths moved into the test's directory).
    const script = [
      'set -e',
      `. ${INSTALLER_LIB}/common.sh`,
      `. ${INSTALLER_LIB}/plan.sh`,
      `. ${INSTALLER_LIB}/identity.sh`,
      `PARTS=${work}/plan-parts AUTHORIZED=${work}/plan-authorized`,
      `read_plan ${work}/plan`,
      `TARGET=${root}`,
      `mkdir -p ${root}/etc ${root}/var/lib/rackseed && touch ${root}/var/lib/rackseed/firstboot-done`,
      'write_firstboot',
    ].join('\n');
    const written = await run('sh', ['-c', script]);
    expect(written.stdout).toContain('first-boot callback installed');
    expect(readFileSync(path.join(root, 'etc/rackseed/callback-token'), 'utf8')).toBe(`${callbackTokens.issue(name, 'booted')}\n`);
    expect(statSync(path.join(root, 'etc/rackseed/callback-token')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(root, 'etc/rackseed')).mode & 0o777).toBe(0o700);
    const unit = readFileSync(path.join(root, 'etc/systemd/system/rackseed-firstboot.service'), 'utf8');
    expect(unit).toMatch(/^Type=oneshot$/m);
    expect(unit).toMatch(/^After=network-online\.target$/m);
    expect(unit).toMatch(/^ConditionPathExists=!\/var\/lib\/rackseed\/firstboot-done$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/sbin\/rackseed-firstboot$/m);
    // Enabled as systemctl enable would: an absolute link, resolved inside the installed system.
    expect(readlinkSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/rackseed-firstboot.service'))).toBe('/etc/systemd/system/rackseed-firstboot.service');
    // A marker carried over in the image is removed: the new system calls back on its first boot.
    expect(existsSync(path.join(root, 'var/lib/rackseed/firstboot-done'))).toBe(false);

    // First boot: the unit's script runs (asynchronously: the server it calls lives in this process).
    const booted = await run('sh', [path.join(root, 'usr/local/sbin/rackseed-firstboot')], { env: { ...process.env, RACKSEED_ROOT: root } });
    expect(booted.stdout).toContain(`told ${baseUrl}/node/v1/booted`);
    expect(existsSync(path.join(root, 'var/lib/rackseed/firstboot-done'))).toBe(true);

    // sshd is not up yet: attempts fail as unreachable and are retried, the node is not marked failed.
    const failedAttempts = await waitFor('two unreachable attempts', async () => {
      const runs = await applyRuns(name);
      return runs.filter((r) => r.result === 'failed').length >= 2 ? runs : undefined;
    }, 60_000, 100);
    for (const r of failedAttempts.filter((x) => x.result === 'failed')) expect(r.summary).toMatchObject({ error: { code: 'STATE_TRANSPORT' } });
    expect(await stateOf(name)).toBe('configuring');
    const waiting = convergence.status().find((s) => s.node === name);
    expect(waiting?.reasons ?? []).not.toContain('probe');

    await bootLateNode();
    await waitFor(`${name} ready`, async () => (await stateOf(name)) === 'ready', 120_000, 200);
    const runs = await applyRuns(name);
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(runs.at(-1)!.result).toBe('changed');
    expect(runs.slice(0, -1).every((r) => r.result === 'failed')).toBe(true);
    expect(await trail(name)).toEqual(['assigned', 'provision_started', 'installed', 'configure_started', 'ready']);
    expect(target(name).sh('cat /srv/conv/web.txt').stdout).toBe(`web role on ${name}\n`);
  });
});

describe('the installer and a plan whose callback is half there', () => {
  it('refuses the plan (a URL without its token), naming the missing line', async () => {
    const text = renderPlan({
      node: { name: 'half01', mac: '02:00:00:00:0c:09', installedBoot: 'kernel', kernelArgs: [], disk: { device: '/dev/vda', table: 'gpt', partitions: [{ mount: '/', size: 'rest', fs: 'ext4' }] } },
      image: { name: 'tiny', sha256: 'a'.repeat(64), size: 1 },
      urls: { torrent: 'http://10.0.0.1:8080/t.torrent', http: 'http://10.0.0.1:8080/t', report: 'http://10.0.0.1:8080/node/v1/report' },
      keys: { hostPrivate: 'x', hostPublic: target(NAMES.late).hostKeyLine, authorized: [] },
      callback: { bootedUrl: 'http://10.0.0.1:8080/node/v1/booted', token: 'cb1.booted.half01.sig' },
    }).replace(/^callback_token .*\n/m, '');
    writeFileSync(path.join(work, 'half-plan'), text);
    const script = `. ${INSTALLER_LIB}/common.sh; . ${INSTALLER_LIB}/plan.sh; PARTS=${work}/half-parts AUTHORIZED=${work}/half-auth; read_plan ${work}/half-plan || echo "refused: $PLAN_ERROR"`;
    expect((await run('sh', ['-c', script])).stdout).toContain('refused: the plan has no callback_token line');
  });
});

describe('role changes', () => {
  it('a new role in the inventory re-converges the nodes it touches: a new run, the new role applied, ready again', async () => {
    await convergence.whenIdle();
    const web = [NAMES.probed, NAMES.late];
    const before = new Map(await Promise.all(web.map(async (n) => [n, (await applyRuns(n)).length] as const)));
    const brokenBefore = (await applyRuns(NAMES.broken)).length;
    writeFileSync(inventory.file, inventoryYaml('base, web, db'));
    await inventory.reload();
    for (const name of web) {
      await waitFor(`${name} re-converged`, async () => (await applyRuns(name)).length > before.get(name)! && (await stateOf(name)) === 'ready', 120_000, 200);
      expect(target(name).sh('cat /srv/conv/db.txt').stdout).toBe(`db role on ${name}\n`);
      expect((await applyRuns(name)).at(-1)!.result).toBe('changed');
      expect((await trail(name)).slice(-3)).toEqual(['ready', 'configure_started', 'ready']);
    }
    await convergence.whenIdle();
    // The broken group's roles did not change: it was not touched.
    expect(await applyRuns(NAMES.broken)).toHaveLength(brokenBefore);
  });
});
