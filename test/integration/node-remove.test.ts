import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeIdentity } from '../../server/services/node-identity.js';
import { readyToProvision } from '../support/installer.js';
import { cliAgainst } from '../support/cli.js';
import { startTestServer, type TestServer } from '../support/server.js';

let srv: TestServer;
const MAC = '52:54:00:00:00:05';
const NEW_MAC = '52:54:00:00:00:06';

beforeAll(async () => {
  srv = await startTestServer({ inventoryFixture: 'api/inventory.yaml', extraConfig: 'torrent:\n  enabled: false' });
  await readyToProvision(srv);
});
afterAll(async () => {
  await srv?.stop();
});

const cli = (...args: string[]): Promise<string> => cliAgainst(srv, args);

const api = async (route: string, payload: unknown) => {
  const res = await fetch(`${srv.httpUrl}/api/v1${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${srv.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
};

const bootScript = async (mac: string) => (await fetch(`${srv.httpUrl}/ipxe/machine?mac=${mac}&serial=SN5`)).text();
const knownHosts = () => readFileSync(path.join(srv.config.dataDir, 'ssh', 'known_hosts'), 'utf8');

describe('rackseed node remove', () => {
  it('a ready node: dry run first, then its entry, host key, lease and lifecycle go; its MAC boots as a discovered machine', async () => {
    await cli('node', 'add', 'n05', '--mac', MAC, '--ip', '10.0.0.5', '--group', 'head');
    // Installed and ready, as after a real install: a boot, the installer's report, convergence.
    expect(await bootScript(MAC)).toContain('rackseed.node=n05');
    for (const event of [{ type: 'installed' }, { type: 'configure_started' }, { type: 'ready' }] as const) {
      expect((await srv.store.recordEvent({ node: 'n05', event })).ok).toBe(true);
    }
    // What the install plan made: its SSH host key, pinned; and what DHCP gave it.
    await new NodeIdentity(srv.config.dataDir).hostKey('n05', '10.0.0.5');
    expect(knownHosts()).toContain('n05,10.0.0.5 ssh-ed25519 ');
    expect((await srv.store.claimLease({ ip: '10.0.0.5', mac: MAC, state: 'bound', expiresAt: Date.now() + 86_400_000 })).ok).toBe(true);
    const before = readFileSync(srv.inventoryFile, 'utf8');

    const dry = await cli('node', 'remove', 'n05');
    expect(dry).toMatch(/n05\s+│\s+ready\s+│\s+\S*inventory\.yaml:\d+ nodes\[2\] \(n05\)\s+│\s+52:54:00:00:00:05\s+│\s+-/);
    expect(dry).toContain('would remove 1 node; nothing changed; re-run with --yes\n');
    expect(readFileSync(srv.inventoryFile, 'utf8')).toBe(before);
    expect(await srv.store.getNode('n05')).toMatchObject({ state: 'ready' });

    const out = await cli('node', 'remove', 'n05', '--yes');
    expect(out).toMatch(/n05\s+│\s+discovered machine 52:54:00:00:00:05\s+│\s+10\.0\.0\.5\s+│\s+deleted\s+│\s+-/);
    expect(out).toContain('removed 1 node from the inventory\n');

    // The file: the entry gone, every other byte (the fixture's comments) kept; the running server reloaded.
    const after = readFileSync(srv.inventoryFile, 'utf8');
    expect(after).toBe(before.replace(/  - name: n05\n(    .*\n)+/, ''));
    expect(after).toContain('  # the head node\n');
    expect(srv.inventory.inventory.nodes.has('n05')).toBe(false);
    // The pin and the key: a machine added later under the name gets its own.
    expect(knownHosts()).not.toContain('n05');
    expect(existsSync(path.join(srv.config.dataDir, 'nodes', 'n05'))).toBe(false);
    // The lease: its address is free for another machine at once.
    expect(await srv.store.getLeaseByMac(MAC)).toMatchObject({ ip: '10.0.0.5', state: 'released' });
    // The record: a discovered machine under its MAC, its history kept for retention to forget.
    expect(await srv.store.getNode('n05')).toBeUndefined();
    expect(await srv.store.getNode(MAC)).toMatchObject({ state: 'discovered', reimageRequested: false });
    const events = await srv.store.listEvents({ node: MAC });
    expect(events.map((e) => e.event.type)).toEqual(['assigned', 'provision_started', 'installed', 'configure_started', 'ready', 'removed']);
    expect(events.at(-1)!.event).toEqual({ type: 'removed', entry: expect.stringMatching(/inventory\.yaml:\d+ nodes\[2\] \(n05\)$/) });

    // Its next boot: an unknown machine, sent on to its next boot device, never installed.
    const script = await bootScript(MAC);
    expect(script).toContain('is not in the inventory');
    expect(script).not.toContain('rackseed.token=');
    expect(await srv.store.getNode(MAC)).toMatchObject({ state: 'discovered', facts: { serial: 'SN5' } });
    const { nodes } = (await (await fetch(`${srv.httpUrl}/api/v1/nodes`, { headers: { authorization: `Bearer ${srv.adminToken}` } })).json()) as { nodes: Array<{ name: string; inInventory: boolean; state: string }> };
    expect(nodes.find((n) => n.name === MAC)).toMatchObject({ inInventory: false, state: 'discovered' });
  });

  it('a new machine under the removed name starts afresh: assigned, installed at its first boot, on the freed address', async () => {
    await cli('node', 'add', 'n05', '--mac', NEW_MAC, '--ip', '10.0.0.5', '--group', 'head');
    expect(await srv.store.getNode('n05')).toMatchObject({ state: 'assigned', reimageRequested: false });
    expect((await srv.store.claimLease({ ip: '10.0.0.5', mac: NEW_MAC, state: 'bound', expiresAt: Date.now() + 86_400_000 })).ok).toBe(true);
    expect(await bootScript(NEW_MAC)).toContain('rackseed.node=n05');
    expect(await srv.store.getNode('n05')).toMatchObject({ state: 'provisioning' });
    // The old machine is still only a discovered one.
    expect(await bootScript(MAC)).toContain('is not in the inventory');
  });

  it('a node installing now is refused without --force, with nothing changed; --force removes it', async () => {
    // n05 (the new machine) is provisioning since its boot above.
    const before = readFileSync(srv.inventoryFile, 'utf8');
    const dry = await api('/nodes/remove', { names: ['n05'] });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ dryRun: true, nodes: [{ node: 'n05', state: 'provisioning', refused: expect.stringMatching(/^installing now \(provisioning\)/) }] });
    const refused = await api('/nodes/remove', { names: ['n05', 'head01'], confirm: true });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toEqual({ code: 'NODE_BUSY', message: expect.stringMatching(/^nothing removed: n05: installing now \(provisioning\): .*--force removes it anyway$/) });
    expect(readFileSync(srv.inventoryFile, 'utf8')).toBe(before);
    expect(await srv.store.getNode('n05')).toMatchObject({ state: 'provisioning' });

    const forced = await api('/nodes/remove', { names: ['n05'], force: true, confirm: true });
    expect(forced.status).toBe(200);
    expect(forced.body).toMatchObject({ dryRun: false, removed: [{ node: 'n05', state: 'provisioning', keptAs: NEW_MAC, releasedLeases: [{ ip: '10.0.0.5', mac: NEW_MAC }], errors: [] }] });
    expect(await srv.store.getNode(NEW_MAC)).toMatchObject({ state: 'discovered' });
    // The installer's token still names the node: its reports no longer apply to anything.
    expect(await srv.store.recordEvent({ node: 'n05', event: { type: 'installed' } })).toMatchObject({ ok: false });
  });

  it('refuses one member of a range, naming the file and line, and an unknown name; nothing changes', async () => {
    const before = readFileSync(srv.inventoryFile, 'utf8');
    const range = await api('/nodes/remove', { names: ['gpu01'], confirm: true });
    expect(range.status).toBe(400);
    expect(range.body.error).toEqual({
      code: 'INVENTORY_INVALID',
      message: expect.stringMatching(/^gpu01 is declared by \S*inventory\.yaml:23 nodes\[1\] range gpu\[01-02\] \(gpu01\), with gpu02; it cannot be removed alone: narrow or split that range by hand, then reload/),
    });
    const unknown = await api('/nodes/remove', { names: ['head01', 'nope01'] });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'NODE_NOT_FOUND', message: 'no node "nope01" in the inventory or the store' });
    const selector = await api('/nodes/remove', { names: ['group:gpu'] });
    expect(selector.status).toBe(400);
    expect(selector.body.error!.message).toMatch(/node remove takes node names and hostlists/);
    expect((await api('/nodes/remove', { names: ['head01'], confirm: 'yes' })).status).toBe(400);
    expect((await api('/nodes/remove', { names: ['head01'], Confirm: true })).status).toBe(400);
    expect(readFileSync(srv.inventoryFile, 'utf8')).toBe(before);
    expect([...srv.inventory.inventory.nodes.keys()]).toEqual(['head01', 'gpu01', 'gpu02']);
  });

  it('a node whose entry was deleted by hand: removing it clears what the server still keeps', async () => {
    expect((await srv.store.recordEvent({ node: 'head01', event: { type: 'provision_started' } })).ok).toBe(true);
    await srv.store.touchNode('head01', { mac: '52:54:00:00:00:01' });
    for (const event of [{ type: 'installed' }, { type: 'configure_started' }, { type: 'ready' }] as const) {
      expect((await srv.store.recordEvent({ node: 'head01', event })).ok).toBe(true);
    }
    const { writeFileSync } = await import('node:fs');
    writeFileSync(srv.inventoryFile, readFileSync(srv.inventoryFile, 'utf8').replace(/  - name: head01\n(    .*\n)+/, ''));
    await srv.inventory.reload();
    expect(srv.inventory.inventory.nodes.has('head01')).toBe(false);
    // Left as it was, the record would hand a new machine named head01 the old one's "ready".
    expect(await srv.store.getNode('head01')).toMatchObject({ state: 'ready' });
    const r = await api('/nodes/remove', { names: ['head01'], confirm: true });
    expect(r.body).toMatchObject({ removed: [{ node: 'head01', keptAs: '52:54:00:00:00:01', errors: [] }] });
    expect(r.body.removed).toEqual([expect.not.objectContaining({ entry: expect.anything() })]);
    expect(await srv.store.getNode('head01')).toBeUndefined();
    expect(await srv.store.getNode('52:54:00:00:00:01')).toMatchObject({ state: 'discovered' });
    // Done once: the name is unknown now.
    expect((await api('/nodes/remove', { names: ['head01'] })).status).toBe(404);
  });

  it('a node an apply, readiness check or convergence holds is refused without --force, nothing changed; --force removes it without waiting', async () => {
    await cli('node', 'add', 'n08', '--mac', '52:54:00:00:00:08', '--ip', '10.0.0.8', '--group', 'head');
    const before = readFileSync(srv.inventoryFile, 'utf8');
    // What a running `state apply` holds (the server's own locks, shared with its state, readiness and convergence).
    const release = await srv.locks.acquire('n08');
    try {
      const dry = await cli('node', 'remove', 'n08');
      expect(dry).toContain('wait for it to end (rackseed runs list n08), or --force removes it without waiting');
      expect(dry).toContain('would remove 0 nodes (1 refused: nothing is removed while any is); nothing changed');
      const refused = await api('/nodes/remove', { names: ['n08'], confirm: true });
      expect(refused.status).toBe(409);
      expect(refused.body.error).toEqual({ code: 'NODE_BUSY', message: expect.stringMatching(/^nothing removed: n08: an apply, readiness check, audit or convergence is running on it or queued for it: /) });
      // Before: removed, while the operation went on against a node whose host key and pin were gone.
      expect(readFileSync(srv.inventoryFile, 'utf8')).toBe(before);
      expect(await srv.store.getNode('n08')).toMatchObject({ state: 'assigned' });

      // Answered while the lock is still held: --force does not wait for the operation.
      const forced = await api('/nodes/remove', { names: ['n08'], force: true, confirm: true });
      expect(forced.status).toBe(200);
      expect(forced.body).toMatchObject({ dryRun: false, removed: [{ node: 'n08', busy: true, keptAs: '52:54:00:00:00:08', errors: [] }] });
      expect(srv.inventory.inventory.nodes.has('n08')).toBe(false);
      // The operation's later events apply to nothing.
      expect(await srv.store.recordEvent({ node: 'n08', event: { type: 'configure_started' } })).toMatchObject({ ok: false });
    } finally {
      release();
    }
  });

  it('a node that never booted (a mistyped MAC, say): its record is forgotten by retention like any other discovered machine', async () => {
    const typo = '52:54:00:00:00:07';
    await cli('node', 'add', 'n07', '--mac', typo, '--group', 'head');
    expect(await srv.store.getNode('n07')).toMatchObject({ state: 'assigned' });
    expect((await srv.store.getNode('n07'))?.mac).toBeUndefined();
    const r = await api('/nodes/remove', { names: ['n07'], confirm: true });
    expect(r.body).toMatchObject({ removed: [{ node: 'n07', keptAs: typo, errors: [] }] });
    expect(await srv.store.getNode(typo)).toMatchObject({ state: 'discovered', mac: typo });
    // Before: the record had no MAC, so retention (which forgets records keyed by their MAC) never matched it.
    const pruned = await srv.store.prune({ keepLastRunsPerNode: 1, discoveredSeenBefore: Date.now() + 60_000 });
    expect(pruned.discovered).toBeGreaterThanOrEqual(1);
    expect(await srv.store.getNode(typo)).toBeUndefined();
  });

  it("a machine's installer token is worthless once the node is removed, also when the name comes back for another machine", async () => {
    const [OLD, NEW] = ['52:54:00:00:00:0a', '52:54:00:00:00:0b'];
    const tokenIn = (script: string) => /rackseed\.token=(\S+)/.exec(script)?.[1];
    const node = (route: string, token: string, body?: unknown) =>
      fetch(`${srv.httpUrl}/node/v1/${route}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    await cli('node', 'add', 'n10', '--mac', OLD, '--ip', '10.0.0.10', '--group', 'head');
    const oldToken = tokenIn(await bootScript(OLD))!;
    expect(oldToken).toBeDefined();
    expect((await node('report', oldToken, { stage: 'partition' })).status).toBe(204);
    // Decommissioned mid-install, and the name given at once to a new machine, which starts its own install.
    expect((await api('/nodes/remove', { names: ['n10'], force: true, confirm: true })).status).toBe(200);
    await cli('node', 'add', 'n10', '--mac', NEW, '--ip', '10.0.0.10', '--group', 'head');
    const newToken = tokenIn(await bootScript(NEW))!;
    expect(await srv.store.getNode('n10')).toMatchObject({ state: 'provisioning', mac: NEW });

    // Before: the old machine's installer reported as the new n10 (204), and could ask for its plan and host key.
    const report = await node('report', oldToken, { failed: 'disk gone', stage: 'partition' });
    expect(report.status).toBe(401);
    expect(((await report.json()) as { error: { message: string } }).error.message).toBe(`this token was issued to machine ${OLD}, which the inventory no longer declares as n10`);
    expect((await node('plan', oldToken)).status).toBe(401);
    expect(await srv.store.getNode('n10')).toMatchObject({ state: 'provisioning' });
    expect((await srv.store.listEvents({ node: 'n10' })).at(-1)!.event).toMatchObject({ type: 'plan_refused', reason: expect.stringContaining(`token issued to machine ${OLD}`) });
    // The new machine's own token is taken.
    expect((await node('report', newToken, { stage: 'partition' })).status).toBe(204);
    expect(await srv.store.getNode('n10')).toMatchObject({ state: 'provisioning', stage: 'partition' });
  });
});
