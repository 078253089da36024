import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { createLogger } from '../../server/log.js';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerPower } from '../../server/cli/commands/power.js';
import { registerReimage } from '../../server/cli/commands/reimage.js';
import { registerWipe } from '../../server/cli/commands/wipe.js';
import { clientContext, type GlobalOptions } from '../../server/cli/context.js';
import { CliExit } from '../../server/cli/exit.js';
import { requireAdminToken } from '../../server/net/http/auth.js';
import { errorHandler, notFoundHandler } from '../../server/net/http/errors.js';
import { fleetRoutes } from '../../server/net/http/fleet-routes.js';
import type { LifecycleEvent } from '../../server/model/lifecycle.js';
import { startFakeRedfish, type FakeRedfish } from '../support/redfish-server.js';
import { startTestServer, type TestServer } from '../support/server.js';

const BULK = 10_000;

/**
 * 10,000 compute nodes with neither IP nor BMC (so a reimage only marks them and lists them for a manual reboot),
 * plus four nodes that exercise each reboot path. Every address is on loopback: nothing here can reach a network.
 */
const INVENTORY = `cluster:
  name: big
groups:
  compute:
    image: debian12
    roles: [base, slurm-compute]
  special:
    image: debian12
    roles: [base, slurm-compute, nvidia]
nodes:
  - range: n[00001-${BULK}]
    group: compute
  - name: r1
    group: special
    ip: 127.0.1.1
  - name: r2
    group: special
    ip: 127.0.1.2
    bmc: { address: 127.0.0.2, kind: redfish }
  - name: r3
    group: special
    bmc: { address: 127.0.0.3, kind: redfish }
  - name: r4
    group: special
`;

let srv: TestServer;
let api: Server;
let baseUrl: string;
let goodBmc: FakeRedfish;
let hungBmc: FakeRedfish;
const sshCalls: Array<{ node: string; ip: string }> = [];
/** While set, SSH reboots wait for it (a reboot still being sent when another request arrives). */
let sshGate: Promise<void> | undefined;
const cancelledNotices: string[][] = [];
const inventoryFile = path.join(tmpdir(), `rackseed-reimage-inventory-${process.pid}.yaml`);

/** What the fleet routes logged (one JSON object per line), to check that every line about a machine names it. */
const logLines: Array<Record<string, unknown>> = [];
const routeLog = createLogger('debug', { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) });
const logged = (msg: string) => logLines.filter((l) => l.msg === msg);

beforeAll(async () => {
  writeFileSync(inventoryFile, INVENTORY);
  // An absolute path: startTestServer copies it into the server's own directory.
  srv = await startTestServer({ inventoryFixture: inventoryFile, extraConfig: 'torrent:\n  enabled: false' });
  goodBmc = await startFakeRedfish({ host: '127.0.0.2' });
  hungBmc = await startFakeRedfish({ host: '127.0.0.3', hang: true });
  const secrets = path.join(srv.config.dataDir, 'secrets');
  mkdirSync(secrets, { recursive: true, mode: 0o700 });
  writeFileSync(
    path.join(secrets, 'bmc.yaml'),
    `groups:\n  special: { username: root, password: calvin, port: ${goodBmc.port}, scheme: http }\nnodes:\n  r3: { username: root, password: calvin, port: ${hungBmc.port}, scheme: http }\n`,
    { mode: 0o600 },
  );
  chmodSync(path.join(secrets, 'bmc.yaml'), 0o600);

  // r1 and r2 run their OS (ready); the rest stay assigned.
  const up: LifecycleEvent[] = [{ type: 'provision_started' }, { type: 'installed' }, { type: 'configure_started' }, { type: 'ready' }];
  for (const node of ['r1', 'r2']) for (const event of up) expect((await srv.store.recordEvent({ node, event })).ok).toBe(true);

  const app = express();
  app.use(
    '/api/v1',
    requireAdminToken(srv.adminToken),
    fleetRoutes({
      inventory: srv.inventory,
      store: srv.store,
      dataDir: srv.config.dataDir,
      log: routeLog,
      power: { timeoutMs: 1500, concurrency: 8 },
      onReimageCancelled: async (nodes) => {
        cancelledNotices.push(nodes);
      },
      // SSH works on r1 and is refused on r2 (which then falls back to its BMC).
      sshReboot: async (node, ip) => {
        sshCalls.push({ node, ip });
        if (sshGate) await sshGate;
        if (node !== 'r1') throw new Error('Permission denied (publickey)');
      },
    }),
  );
  app.use(notFoundHandler());
  app.use(errorHandler(srv.log));
  api = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  baseUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
}, 180_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (api ? api.close(() => resolve()) : resolve()));
  await goodBmc?.close();
  await hungBmc?.close();
  await srv?.stop();
  rmSync(inventoryFile, { force: true });
});

async function post(route: string, body: unknown, token = srv.adminToken): Promise<{ status: number; json: any }> {
  const res = await fetch(`${baseUrl}/api/v1${route}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

/** Runs `rackseed <args>` in-process with only the reimage and power verbs; returns output and exit status. */
async function cli(...args: string[]): Promise<{ out: string; code: number }> {
  let out = '';
  const write = (s: string) => {
    out += s;
  };
  const program = new Command('rackseed').option('-c, --config <file>', 'config', '/nonexistent.yaml').option('--server <url>').option('--token <token>').option('--json').exitOverride();
  const ctx = (opts: GlobalOptions) => clientContext(opts, write);
  registerReimage(program, ctx);
  registerWipe(program, ctx);
  registerPower(program, ctx);
  try {
    await program.parseAsync(['node', 'rackseed', '--server', baseUrl, '--token', srv.adminToken, ...args]);
    return { out, code: 0 };
  } catch (e) {
    if (e instanceof CliExit) return { out, code: e.code };
    throw e;
  }
}

const snapshot = async () => {
  const nodes = await srv.store.listNodes();
  return { events: (await srv.store.listEvents({ limit: 1_000_000 })).length, pending: nodes.filter((n) => n.reimageRequested).map((n) => n.id) };
};

describe('reimage', () => {
  it('a dry run plans every targeted node and changes nothing in the store', async () => {
    const before = await snapshot();
    const record = vi.spyOn(srv.store, 'recordEvents');
    const { status, json } = await post('/reimage', { targets: [`n[00001-${BULK}]`, 'r[1-4]'], confirm: false });
    expect(status).toBe(200);
    expect(json.dryRun).toBe(true);
    expect(json.plan.counts).toEqual({ targeted: BULK + 4, toMark: BULK + 4, skipped: 0, ssh: 2, bmc: 1, manual: BULK + 1, slurm: 0 });
    expect(json.plan.nodes.find((n: { node: string }) => n.node === 'r2')).toMatchObject({ reboot: 'ssh', bmcFallback: true });

    const dry = await cli('reimage', 'r[1-4]');
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/r1\s+│\s+special\s+│\s+ready\s+│\s+ssh/);
    expect(dry.out).toMatch(/r2\s+│.*│\s+ssh, then bmc/);
    expect(dry.out).toMatch(/r4\s+│.*│\s+by hand/);
    expect(dry.out).toContain('would mark 4 of 4 nodes for reimage (reboot: 2 over ssh, 1 through their BMC, 1 by hand)');
    expect(dry.out.trimEnd().split('\n').pop()).toBe('nothing changed; re-run with --yes');

    expect(record).not.toHaveBeenCalled();
    expect(await snapshot()).toEqual(before);
    expect(sshCalls).toEqual([]);
    expect(goodBmc.requests).toEqual([]);
    record.mockRestore();
  });

  it('refuses an unknown target, a role, an unknown group and a range member moved alone, before doing anything', async () => {
    const inventoryBefore = readFileSync(srv.inventory.file, 'utf8');
    expect(await post('/reimage', { targets: ['n[00001-10001]'], confirm: true })).toMatchObject({ status: 404, json: { error: { code: 'INVENTORY_NOT_FOUND' } } });
    expect(await post('/reimage', { targets: ['r1'], role: 'slurm-compute', confirm: true })).toMatchObject({
      status: 400,
      json: { error: { code: 'BAD_REQUEST', message: expect.stringMatching(/^reimage does not take a role: a node's roles come from its group\. .*reimage --group NAME/) } },
    });
    expect(await post('/reimage', { targets: ['r1'], group: 'gpu', confirm: true })).toMatchObject({ status: 404, json: { error: { code: 'GROUP_NOT_FOUND', message: expect.stringContaining('no group "gpu"') } } });
    expect(await post('/reimage', { targets: ['r1'], group: 7, confirm: true })).toMatchObject({ status: 400, json: { error: { code: 'BAD_REQUEST' } } });
    for (const confirm of [false, true]) {
      expect(await post('/reimage', { targets: ['r1', 'n00002'], group: 'special', confirm })).toMatchObject({
        status: 400,
        json: { error: { code: 'INVENTORY_INVALID', message: expect.stringMatching(/^n00002 is declared by .* range n\[00001-10000\] \(n00002\); give it a group column/) } },
      });
    }
    expect(await post('/reimage', { targets: 'r1', confirm: true })).toMatchObject({ status: 400, json: { error: { code: 'BAD_REQUEST' } } });
    // A misspelt key is refused: before, "Group" was ignored and the node was reimaged into its own group.
    expect(await post('/reimage', { targets: ['r1'], Group: 'special', confirm: true })).toMatchObject({ status: 400, json: { error: { code: 'BAD_REQUEST', message: expect.stringContaining('unknown key "Group"') } } });
    expect(await post('/reimage/cancel', { targets: ['r1'], group: 'special' })).toMatchObject({ status: 400, json: { error: { code: 'BAD_REQUEST' } } });
    expect(await post('/power', { action: 'off', targets: ['r1'], confirm: true, force: true })).toMatchObject({ status: 400, json: { error: { code: 'BAD_REQUEST' } } });
    await expect(cli('reimage', 'r1', '--cancel', '--group', 'compute')).rejects.toThrow(/--cancel takes no --group/);
    expect((await snapshot()).pending).toEqual([]);
    expect(readFileSync(srv.inventory.file, 'utf8')).toBe(inventoryBefore);
  });

  it(`--yes marks exactly the ${BULK} targeted nodes in one recordEvents batch`, async () => {
    const before = await snapshot();
    const record = vi.spyOn(srv.store, 'recordEvents');
    const single = vi.spyOn(srv.store, 'recordEvent');
    const { out, code } = await cli('reimage', 'group:compute', '--yes');
    expect(code).toBe(0);
    expect(out).toContain(`mark: ${BULK} nodes...`);
    expect(out).toContain(`mark: done (${BULK}/${BULK})`);
    expect(out).toMatch(new RegExp(`^marked for reimage\\s+${BULK}$`, 'm'));
    expect(out).toMatch(new RegExp(`^reboot by hand\\s+${BULK}$`, 'm'));
    expect(out).toContain(`... and ${BULK - 50} more`);

    // One transaction: one call carrying one reimage_requested per targeted node, and no per-node writes.
    expect(record).toHaveBeenCalledTimes(1);
    const batch = record.mock.calls[0]![0];
    expect(batch).toHaveLength(BULK);
    expect(new Set(batch.map((e) => e.node)).size).toBe(BULK);
    expect(batch.every((e) => e.event.type === 'reimage_requested' && e.node.startsWith('n'))).toBe(true);
    expect(single).not.toHaveBeenCalled();
    record.mockRestore();
    single.mockRestore();

    // The store: one new event per node, and exactly the compute nodes pending.
    const after = await snapshot();
    expect(after.events - before.events).toBe(BULK);
    expect(after.pending.length).toBe(BULK);
    expect(after.pending.every((id) => /^n\d{5}$/.test(id))).toBe(true);
    expect(await srv.store.getNode('n00042')).toMatchObject({ state: 'assigned', reimageRequested: true });
    expect(await srv.store.getNode('r1')).toMatchObject({ reimageRequested: false });
  });

  it('reboots over SSH when a node is up, through the BMC otherwise or when SSH fails, and says who needs a hand', async () => {
    logLines.length = 0;
    const { out, code } = await cli('--json', 'reimage', 'r[1-4]', '--yes');
    expect(code).toBe(1); // r3's BMC never answered
    const result = JSON.parse(out);
    const byNode = Object.fromEntries(result.summary.reboots.map((r: { node: string }) => [r.node, r]));
    expect(byNode.r1).toEqual({ node: 'r1', method: 'ssh', ok: true });
    expect(byNode.r2).toEqual({ node: 'r2', method: 'bmc', ok: true, sshError: 'Permission denied (publickey)' });
    expect(byNode.r3).toMatchObject({ node: 'r3', method: 'bmc', ok: false, error: expect.stringMatching(/no answer within 1.5 s/) });
    expect(byNode.r4).toMatchObject({ node: 'r4', method: 'manual', ok: false, error: expect.stringMatching(/reboot it by hand/) });
    expect(result.summary.counts).toEqual({ marked: 4, notMarked: 0, rebootedSsh: 1, rebootedBmc: 1, manual: 1, failed: 1, rebootUnderWay: 0, slurmWhenIdle: 0 });
    expect(sshCalls).toEqual([{ node: 'r1', ip: '127.0.1.1' }, { node: 'r2', ip: '127.0.1.2' }]);
    // r2's BMC: a one-time PXE boot override, then a restart of the running machine.
    expect(goodBmc.changes().map((r) => [r.method, r.body])).toEqual([
      ['PATCH', { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } }],
      ['POST', { ResetType: 'ForceRestart' }],
    ]);
    for (const n of ['r1', 'r2', 'r3', 'r4']) expect(await srv.store.getNode(n)).toMatchObject({ reimageRequested: true });
    // The log says which machines were sent to be wiped and how each reboot went (it said only how many).
    expect(logged('reimage requested for node').map((l) => l.node)).toEqual(expect.arrayContaining(['r1', 'r2', 'r3', 'r4']));
    expect(logged('reimage reboot sent').map((l) => [l.node, l.method]).sort()).toEqual([['r1', 'ssh'], ['r2', 'bmc']]);
    const failed = logged('reimage reboot failed');
    expect(failed.map((l) => [l.node, l.level]).sort()).toEqual([['r3', 40], ['r4', 40]]);
    expect(failed.find((l) => l.node === 'r3')!.reason).toMatch(/no answer within 1.5 s/);
    expect(JSON.stringify(logLines)).not.toContain('calvin');
  });

  it('streams NDJSON progress lines and ends with the result', async () => {
    const res = await fetch(`${baseUrl}/api/v1/reimage`, {
      method: 'POST',
      headers: { authorization: `Bearer ${srv.adminToken}`, 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify({ targets: ['r1', 'r4'], confirm: true }),
    });
    expect(res.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.slice(0, -1).every((l) => l.type === 'progress')).toBe(true);
    expect(lines.filter((l) => l.phase === 'mark').map((l) => [l.done, l.total])).toEqual([[0, 2], [2, 2]]);
    expect(lines.filter((l) => l.phase === 'reboot' && l.node).map((l) => [l.node, l.method, l.ok]).sort()).toEqual([['r1', 'ssh', true], ['r4', 'manual', false]]);
    expect(lines.at(-1)).toMatchObject({ type: 'result', dryRun: false, summary: { counts: { marked: 2 } } });
  });

  it('--cancel withdraws pending marks in one batch, reboots nothing, and the node then boots its installed OS', async () => {
    // r1-r4 are marked by the tests above; r1 was rebooted over SSH, r4 waits for a hand that never came.
    expect(await srv.store.getNode('r4')).toMatchObject({ reimageRequested: true });
    const sshBefore = sshCalls.length;
    const bmcBefore = goodBmc.requests.length;
    const record = vi.spyOn(srv.store, 'recordEvents');
    const { out, code } = await cli('reimage', '--cancel', 'r[3-4]', 'r1');
    expect(code).toBe(0);
    expect(out).toMatch(/r3\s+│\s+cancelled/);
    expect(out).toMatch(/r4\s+│\s+cancelled/);
    expect(out).toContain('cancelled the pending reimage of 3 of 3 node(s)');
    expect(record).toHaveBeenCalledTimes(1);
    expect(record.mock.calls[0]![0].map((e) => [e.node, e.event.type])).toEqual([['r1', 'reimage_cancelled'], ['r3', 'reimage_cancelled'], ['r4', 'reimage_cancelled']]);
    record.mockRestore();
    for (const n of ['r1', 'r3', 'r4']) expect(await srv.store.getNode(n)).toMatchObject({ reimageRequested: false });
    // Convergence hears of them (a node moved by reimage --group now runs its old OS under its new group).
    expect(cancelledNotices).toEqual([['r1', 'r3', 'r4']]);
    expect(await srv.store.getNode('r2')).toMatchObject({ reimageRequested: true });
    expect(sshCalls.length).toBe(sshBefore);
    expect(goodBmc.requests.length).toBe(bmcBefore);
    // Nothing pending any more: a second cancel changes nothing and says so.
    const again = await post('/reimage/cancel', { targets: ['r1'] });
    expect(again).toMatchObject({ status: 200, json: { cancelled: [], notPending: ['r1'] } });
    expect(await post('/reimage/cancel', { targets: ['nope99'] })).toMatchObject({ status: 404, json: { error: { code: 'INVENTORY_NOT_FOUND' } } });
  });

  it('needs the admin token', async () => {
    expect((await post('/reimage', { targets: ['r1'], confirm: true }, 'wrong-token-wrong-token-wrong-token')).status).toBe(401);
    expect((await post('/reimage/cancel', { targets: ['r1'] }, 'wrong-token-wrong-token-wrong-token')).status).toBe(401);
  });
});

describe('reimage --group: into another group in one command', () => {
  const groupOf = (node: string) => srv.inventory.inventory.nodes.get(node)?.group;

  it('a dry run shows the move and writes nothing; --yes edits the entry, then marks the node', async () => {
    const before = readFileSync(srv.inventory.file, 'utf8');
    const dry = await post('/reimage', { targets: ['r4'], group: 'compute', confirm: false });
    expect(dry.json.plan.nodes).toEqual([expect.objectContaining({ node: 'r4', group: 'compute', fromGroup: 'special', reboot: 'manual' })]);
    const cliDry = await cli('reimage', 'group:special', '--group', 'compute');
    expect(cliDry.out).toMatch(/r4\s+│\s+special -> compute\s+│/);
    expect(cliDry.out).toContain('would move 4 nodes into group compute');
    expect(readFileSync(srv.inventory.file, 'utf8')).toBe(before);
    expect(groupOf('r4')).toBe('special');

    const { out, code } = await cli('reimage', 'r4', '--group', 'compute', '--yes');
    expect(code).toBe(0);
    expect(out).toMatch(/^moved into group compute\s+1$/m);
    expect(out).toMatch(/^marked for reimage\s+1$/m);
    // Only r4's own group: line changed; the file is otherwise as it was.
    expect(readFileSync(srv.inventory.file, 'utf8')).toBe(before.replace('  - name: r4\n    group: special\n', '  - name: r4\n    group: compute\n'));
    expect(groupOf('r4')).toBe('compute');
    expect(await srv.store.getNode('r4')).toMatchObject({ reimageRequested: true });
  });

  it('--cancel moves a node back into the group it left; a failed move back is reported and exits 1', async () => {
    // r4 was moved special -> compute and marked by the test before.
    const moved = readFileSync(srv.inventory.file, 'utf8');
    expect(await srv.store.getNode('r4')).toMatchObject({ reimageRequested: true, reimageFromGroup: 'special' });
    const { out, code } = await cli('reimage', 'r4', '--cancel');
    expect(code).toBe(0);
    expect(out).toMatch(/r4\s+│\s+cancelled\s+│\s+back in group special/);
    expect(out).toContain('cancelled the pending reimage of 1 of 1 node(s); moved 1 back into the group they left');
    expect(readFileSync(srv.inventory.file, 'utf8')).toBe(moved.replace('  - name: r4\n    group: compute\n', '  - name: r4\n    group: special\n'));
    expect(groupOf('r4')).toBe('special');
    const after = await srv.store.getNode('r4');
    expect(after).toMatchObject({ reimageRequested: false });
    expect(after).not.toHaveProperty('reimageFromGroup');

    // Requested twice (into compute, then again): the group to go back to is still the first one left.
    expect((await cli('reimage', 'r4', '--group', 'compute', '--yes')).code).toBe(0);
    expect((await cli('reimage', 'r4', '--yes')).code).toBe(0);
    expect(await srv.store.getNode('r4')).toMatchObject({ reimageRequested: true, reimageFromGroup: 'special' });
    const move = srv.inventory.moveToGroup.bind(srv.inventory);
    const failingMove = vi.spyOn(srv.inventory, 'moveToGroup').mockImplementation(async (names, group, options) => {
      if (options.dryRun) return move(names, group, options);
      throw new Error('inventory file is read-only');
    });
    const failed = await cli('reimage', 'r4', '--cancel');
    failingMove.mockRestore();
    expect(failed.code).toBe(1);
    expect(failed.out).toMatch(/r4\s+│\s+cancelled\s+│\s+still in its new group, not moved back to special: inventory file is read-only/);
    // The mark is withdrawn all the same (the node boots its installed OS); the operator sees which group to fix.
    expect(await srv.store.getNode('r4')).toMatchObject({ reimageRequested: false });
    expect(groupOf('r4')).toBe('compute');
    expect((await post('/reimage/cancel', { targets: ['r4'] })).json).toEqual({ cancelled: [], notPending: ['r4'], restored: [], notRestored: [], slurmCancelled: [], slurmNotCancelled: [] });
  });

  it('a cancel that arrives while a --group reimage marks and moves waits for it, then moves the node back (it left the node in its new group, unmarked)', async () => {
    expect(groupOf('r2')).toBe('special');
    const listNodes = srv.store.listNodes.bind(srv.store);
    const recordEvents = srv.store.recordEvents.bind(srv.store);
    let cancel: Promise<{ status: number; json: any }> | undefined;
    // The cancel is sent the moment the reimage writes its marks, and its store read is slow (a loaded database).
    const slowList = vi.spyOn(srv.store, 'listNodes').mockImplementation(async () => {
      if (cancel) await new Promise((r) => setTimeout(r, 300));
      return listNodes();
    });
    const marking = vi.spyOn(srv.store, 'recordEvents').mockImplementation(async (batch) => {
      if (!cancel && batch.some((e) => e.event.type === 'reimage_requested')) {
        cancel = post('/reimage/cancel', { targets: ['r2'] });
        // The cancel gets in while the marks are being written (it read the inventory before the move, then the
        // mark after it).
        await new Promise((r) => setTimeout(r, 100));
      }
      return recordEvents(batch);
    });
    try {
      const reimaged = await post('/reimage', { targets: ['r2'], group: 'compute', confirm: true });
      expect(reimaged.status).toBe(200);
      const cancelled = await cancel!;
      expect(cancelled.json).toMatchObject({ cancelled: ['r2'], restored: [{ node: 'r2', group: 'special' }] });
    } finally {
      slowList.mockRestore();
      marking.mockRestore();
    }
    expect(groupOf('r2')).toBe('special');
    expect(await srv.store.getNode('r2')).toMatchObject({ reimageRequested: false });
  });

  it('moves only what was marked: no move when the marks fail or the lifecycle refuses, marks withdrawn when the move fails', async () => {
    const before = readFileSync(srv.inventory.file, 'utf8');
    const record = vi.spyOn(srv.store, 'recordEvents').mockRejectedValueOnce(new Error('disk full'));
    expect((await post('/reimage', { targets: ['r3'], group: 'compute', confirm: true })).status).toBe(500);
    expect(readFileSync(srv.inventory.file, 'utf8')).toBe(before);

    record.mockImplementationOnce(async (batch) => batch.map((e) => ({ ok: false as const, node: e.node, error: 'lifecycle: refused for this test' })));
    const refused = await post('/reimage', { targets: ['r3'], group: 'compute', confirm: true });
    record.mockRestore();
    expect(refused.status).toBe(200);
    expect(refused.json.summary).toMatchObject({ moved: [], notMarked: [{ node: 'r3', error: 'lifecycle: refused for this test' }], reboots: [] });
    expect(readFileSync(srv.inventory.file, 'utf8')).toBe(before);
    expect(groupOf('r3')).toBe('special');

    const move = srv.inventory.moveToGroup.bind(srv.inventory);
    const failingMove = vi.spyOn(srv.inventory, 'moveToGroup').mockImplementation(async (names, group, options) => {
      if (options.dryRun) return move(names, group, options);
      throw new Error('inventory file is read-only');
    });
    const bmcBefore = goodBmc.requests.length;
    const moveFailed = await post('/reimage', { targets: ['r3'], group: 'compute', confirm: true });
    // Named, not "internal error": what failed and what became of the marks.
    expect(moveFailed).toMatchObject({ status: 503, json: { error: { code: 'INVENTORY_WRITE_FAILED', message: expect.stringContaining('inventory file is read-only') } } });
    expect(moveFailed.json.error.message).toContain('the 1 mark(s) this request made were withdrawn, and nothing was rebooted');
    // Marked, then withdrawn: no node is left pending in a group that was never written.
    const events = await srv.store.listEvents({ node: 'r3' });
    expect(events.slice(-2).map((e) => e.event.type)).toEqual(['reimage_requested', 'reimage_cancelled']);
    expect(await srv.store.getNode('r3')).toMatchObject({ reimageRequested: false });
    expect(goodBmc.requests.length).toBe(bmcBefore);
    expect(groupOf('r3')).toBe('special');

    // A reimage pending from before is not withdrawn by a later --group request that fails (it was, silently).
    expect((await post('/reimage', { targets: ['r3'], confirm: true })).status).toBe(200);
    expect(await srv.store.getNode('r3')).toMatchObject({ reimageRequested: true });
    const again = await post('/reimage', { targets: ['r3'], group: 'compute', confirm: true });
    failingMove.mockRestore();
    expect(again).toMatchObject({ status: 503, json: { error: { code: 'INVENTORY_WRITE_FAILED' } } });
    expect(again.json.error.message).toContain('the 0 mark(s) this request made were withdrawn, 1 pending from before stay');
    expect(await srv.store.getNode('r3')).toMatchObject({ reimageRequested: true });
    expect((await post('/reimage/cancel', { targets: ['r3'] })).json).toMatchObject({ cancelled: ['r3'] });
  });

  it('a second reimage of a node whose reboot another request is sending marks it but does not reboot it again', async () => {
    let open!: () => void;
    sshGate = new Promise<void>((resolve) => (open = resolve));
    const before = sshCalls.length;
    try {
      const first = post('/reimage', { targets: ['r1'], confirm: true });
      await vi.waitFor(() => expect(sshCalls.length).toBe(before + 1), { timeout: 10_000 });
      logLines.length = 0;
      const second = await cli('--json', 'reimage', 'r1', '--yes');
      expect(second.code).toBe(0);
      const result = JSON.parse(second.out);
      expect(result.summary.reboots).toEqual([{ node: 'r1', method: 'ssh', ok: true, underWay: true }]);
      expect(result.summary.counts).toMatchObject({ marked: 1, rebootedSsh: 0, rebootUnderWay: 1, failed: 0 });
      // The machine got one reboot, not a second one while it restarts into the installer.
      expect(sshCalls.length).toBe(before + 1);
      expect(logged('reimage reboot already under way in another request: not sent again').map((l) => l.node)).toEqual(['r1']);
      open();
      expect((await first).json.summary.reboots).toEqual([{ node: 'r1', method: 'ssh', ok: true }]);
    } finally {
      sshGate = undefined;
      open();
    }
    // Once that reboot is done, a new request reboots the node again (an operator retrying a reboot that did not take).
    expect((await post('/reimage', { targets: ['r1'], confirm: true })).json.summary.counts).toMatchObject({ rebootedSsh: 1, rebootUnderWay: 0 });
    expect(sshCalls.length).toBe(before + 2);
    expect((await post('/reimage/cancel', { targets: ['r1'] })).json).toMatchObject({ cancelled: ['r1'] });
  });
});

describe('wipe', () => {
  it('a dry run says which nodes would lose every disk and how each is rebooted, and changes nothing', async () => {
    const before = await srv.store.listEvents({ limit: 1_000_000 });
    const { out, code } = await cli('wipe', 'r1', 'n00001', '--mode', 'full');
    expect(code).toBe(0);
    expect(out).toMatch(/r1\s+│\s+ready\s+│\s+ssh/);
    expect(out).toMatch(/n00001\s+│\s+assigned\s+│\s+by hand/);
    expect(out).toContain('would full-wipe EVERY disk of 2 of 2 nodes on their next network boot (reboot: 1 over ssh, 0 through their BMC, 1 by hand)');
    expect(out.trimEnd().split('\n').pop()).toBe('nothing changed; re-run with --yes to erase them');
    expect((await srv.store.listEvents({ limit: 1_000_000 })).length).toBe(before.length);
    expect(await srv.store.getNode('r1')).not.toHaveProperty('wipeRequested');
  });

  it('refuses a missing or unknown mode, an unknown key, an unknown target and a request without the admin token', async () => {
    expect(await post('/wipe', { targets: ['r1'], confirm: true })).toMatchObject({ status: 400, json: { error: { message: expect.stringContaining('"mode" must be "quick" or "full"') } } });
    expect(await post('/wipe', { targets: ['r1'], mode: 'secure', confirm: true })).toMatchObject({ status: 400 });
    expect(await post('/wipe', { targets: ['r1'], mode: 'quick', group: 'special', confirm: true })).toMatchObject({ status: 400, json: { error: { message: expect.stringContaining('unknown key "group"') } } });
    expect(await post('/wipe', { targets: ['nope99'], mode: 'quick', confirm: true })).toMatchObject({ status: 404, json: { error: { code: 'INVENTORY_NOT_FOUND' } } });
    expect((await post('/wipe', { targets: ['r1'], mode: 'quick', confirm: true }, 'wrong-token-wrong-token-wrong-token')).status).toBe(401);
    expect((await post('/wipe/cancel', { targets: ['r1'] }, 'wrong-token-wrong-token-wrong-token')).status).toBe(401);
    const usage = await cli('wipe', 'r1', '--mode', 'secure', '--yes').catch((e: unknown) => e);
    expect(String((usage as Error).message ?? usage)).toContain('--mode must be quick or full');
    expect(await srv.store.getNode('r1')).not.toHaveProperty('wipeRequested');
  });

  it('--yes marks the nodes with the mode and reboots them as a reimage does; the log names each machine', async () => {
    logLines.length = 0;
    const sshBefore = sshCalls.length;
    const { out, code } = await cli('--json', 'wipe', 'r1', 'n00001', '--mode', 'full', '--yes');
    expect(code).toBe(0);
    const result = JSON.parse(out);
    expect(result.summary.counts).toMatchObject({ marked: 2, notMarked: 0, rebootedSsh: 1, manual: 1 });
    expect(sshCalls.slice(sshBefore)).toEqual([{ node: 'r1', ip: '127.0.1.1' }]);
    for (const n of ['r1', 'n00001']) expect(await srv.store.getNode(n)).toMatchObject({ wipeRequested: 'full' });
    expect((await srv.store.listEvents({ node: 'r1' })).at(-1)?.event).toEqual({ type: 'wipe_requested', mode: 'full' });
    // A destructive request is logged per machine, at warning level.
    expect(logged('wipe requested for node').map((l) => [l.node, l.level, l.mode]).sort()).toEqual([['n00001', 40, 'full'], ['r1', 40, 'full']]);
    expect(logged('wipe reboot sent').map((l) => l.node)).toEqual(['r1']);
  });

  it('leaves a node wiping now alone unless forced, and --cancel withdraws pending wipes but not one under way', async () => {
    // n00002 is wiping its disks now.
    for (const event of [{ type: 'wipe_requested', mode: 'quick' }, { type: 'wipe_started' }] as LifecycleEvent[]) expect((await srv.store.recordEvent({ node: 'n00002', event })).ok).toBe(true);
    const dry = await post('/wipe', { targets: ['n00002'], mode: 'quick' });
    expect(dry.json.plan.nodes[0]).toMatchObject({ node: 'n00002', state: 'wiping', skip: 'wiping its disks now: left alone (force restarts the wipe)' });
    expect((await post('/wipe', { targets: ['n00002'], mode: 'quick', force: true })).json.plan.counts).toMatchObject({ toMark: 1 });
    // A reimage leaves it alone too: rebooting it into the installer stops the wipe.
    expect((await post('/reimage', { targets: ['n00002'] })).json.plan.nodes[0].skip).toMatch(/^wiping its disks now: left alone \(force reboots it: the wipe starts again/);

    const { out, code } = await cli('wipe', '--cancel', 'r1', 'n00001', 'n00002', 'n00003');
    expect(code).toBe(1);
    expect(out).toMatch(/r1\s+│\s+cancelled/);
    expect(out).toMatch(/n00002\s+│\s+wiping now: past cancelling/);
    expect(out).toMatch(/n00003\s+│\s+none pending/);
    expect(out).toContain('cancelled the pending wipe of 2 of 4 node(s)');
    expect(await srv.store.getNode('r1')).not.toHaveProperty('wipeRequested');
    expect(await srv.store.getNode('n00002')).toMatchObject({ state: 'wiping', wipeRequested: 'quick' });

    // A wipe that will never report (the machine is gone, or cannot reach the server) is abandoned with --force: it
    // fails in stage wipe instead of wiping again at every boot, and can be reimaged.
    const abandoned = await cli('wipe', '--cancel', '--force', 'n00002');
    expect(abandoned.code).toBe(0);
    expect(abandoned.out).toMatch(/n00002\s+│\s+wipe abandoned: failed, its disks in an unknown state/);
    const failed = await srv.store.getNode('n00002');
    expect(failed).toMatchObject({ state: 'failed', stage: 'wipe', reason: expect.stringContaining('wipe abandoned by the operator') });
    expect(failed).not.toHaveProperty('wipeRequested');
  });
});

describe('power', () => {
  it('reports per node; a hung BMC times out alone and the CLI exits 1', async () => {
    logLines.length = 0;
    goodBmc.system.PowerState = 'On';
    const { out, code } = await cli('power', 'status', 'r[1-3]');
    expect(code).toBe(1);
    expect(out).toMatch(/r1\s+│\s+failed\s+│\s+-\s+│\s+0\.0s\s+│\s+no BMC in the inventory/);
    expect(out).toMatch(/r2\s+│\s+ok\s+│\s+on\s+│/);
    expect(out).toMatch(/r3\s+│\s+timeout\s+│\s+-\s+│\s+1\.\ds\s+│\s+no answer within 1.5 s/);
    expect(out).toContain('1 ok, 2 failed');
    const status = logLines.filter((l) => l.action === 'status');
    expect(status.filter((l) => l.msg === 'power action failed').map((l) => l.node).sort()).toEqual(['r1', 'r3']);
    expect(status.find((l) => l.node === 'r2')).toMatchObject({ msg: 'power status', state: 'on' });
  });

  it('off, cycle and pxe without confirmation only list the BMCs and change nothing (API and CLI)', async () => {
    const before = goodBmc.changes().length;
    for (const action of ['off', 'cycle', 'pxe']) {
      const { status, json } = await post('/power', { targets: ['r[1-2]'], action });
      expect(status).toBe(200);
      expect(json).toEqual({ type: 'result', dryRun: true, action, plan: [{ node: 'r1', problem: 'no BMC in the inventory' }, { node: 'r2', bmc: { address: '127.0.0.2', kind: 'redfish' } }] });
    }
    const { out, code } = await cli('power', 'off', 'r[1-2]');
    expect(code).toBe(0);
    expect(out).toMatch(/r2\s+│\s+redfish 127\.0\.0\.2/);
    expect(out).toContain('would power off 1 of 2 nodes through their BMC\nnothing changed; re-run with --yes');
    expect(goodBmc.changes().length).toBe(before);
    expect(await post('/power', { targets: ['r2'], action: 'off', confirm: 'yes' })).toMatchObject({ status: 400, json: { error: { code: 'BAD_REQUEST' } } });

    const yes = await cli('power', 'cycle', 'r2', '--yes');
    expect(yes.code).toBe(0);
    expect(yes.out).toContain('1 ok, 0 failed');
    expect(goodBmc.changes().slice(before).map((r) => r.body)).toEqual([{ ResetType: 'ForceRestart' }]);
  });

  it('off through the API: JSON results, and a bad action is a 400', async () => {
    const before = goodBmc.changes().length;
    const { status, json } = await post('/power', { targets: ['r2'], action: 'off', confirm: true });
    expect(status).toBe(200);
    expect(json).toMatchObject({ type: 'result', dryRun: false, action: 'off', results: [{ node: 'r2', ok: true, state: 'off' }], counts: { ok: 1, failed: 0 } });
    expect(goodBmc.changes().slice(before).map((r) => r.body)).toEqual([{ ResetType: 'ForceOff' }]);
    expect(await post('/power', { targets: ['r2'], action: 'explode' })).toMatchObject({ status: 400, json: { error: { code: 'BAD_REQUEST' } } });
  });

  it('pxe asks the BMC for the firmware mode the node last netbooted in (iPXE platform efi or pcbios), none when unknown', async () => {
    const patches = () => goodBmc.changes().filter((r) => r.method === 'PATCH').map((r) => (r.body as { Boot: Record<string, unknown> }).Boot.BootSourceOverrideMode);
    const before = patches().length;
    expect((await post('/power', { targets: ['r2'], action: 'pxe', confirm: true })).json).toMatchObject({ counts: { ok: 1, failed: 0 } });
    await srv.store.touchNode('r2', { facts: { platform: 'efi' } });
    expect((await post('/power', { targets: ['r2'], action: 'pxe', confirm: true })).json).toMatchObject({ counts: { ok: 1, failed: 0 } });
    await srv.store.touchNode('r2', { facts: { platform: 'pcbios' } });
    expect((await post('/power', { targets: ['r2'], action: 'pxe', confirm: true })).json).toMatchObject({ counts: { ok: 1, failed: 0 } });
    expect(patches().slice(before)).toEqual([undefined, 'UEFI', 'Legacy']);
  });

  it('refuses to use a credentials file that others can read', async () => {
    const file = path.join(srv.config.dataDir, 'secrets', 'bmc.yaml');
    chmodSync(file, 0o644);
    try {
      const { json } = await post('/power', { targets: ['r2'], action: 'status' });
      expect(json.error).toMatchObject({ code: 'BMC_CREDENTIALS', message: expect.stringMatching(/readable by group or others/) });
    } finally {
      chmodSync(file, 0o600);
    }
  });
});
