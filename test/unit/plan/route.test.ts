import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallbackTokens } from '../../../server/auth/callback-token.js';
import { NodeTokens } from '../../../server/auth/node-token.js';
import { ensureSecretFile } from '../../../server/auth/secret-file.js';
import { imagesDir } from '../../../server/images/catalog.js';
import type { ImageManifest } from '../../../server/model/image.js';
import { dhcpAddressOf } from '../../../server/net/http/plan-route.js';
import { nodeRoutes } from '../../../server/net/http/node-routes.js';
import { NodeIdentity } from '../../../server/services/node-identity.js';
import { writeStandInInstaller } from '../../support/installer.js';
import { startTestServer, type TestServer } from '../../support/server.js';

/**
 * GET /node/v1/plan against a real server and its real SQLite store: single use per token, refused after the
 * token expires, only the asking node's data, and a replay recorded on the node.
 */
let server: TestServer;
let tokens: NodeTokens;

const SHA = 'b'.repeat(64);
/** The fixture's MACs: a token is issued to the machine the inventory sends to its node. */
const MACS: Record<string, string> = { node01: '52:54:00:aa:00:01', node02: '52:54:00:aa:00:02', vendor01: '52:54:00:aa:00:03', ghost01: '52:54:00:aa:00:09' };

beforeAll(async () => {
  server = await startTestServer({ inventoryFixture: 'plan/inventory.yaml' });
  const dataDir = server.config.dataDir;
  tokens = new NodeTokens(ensureSecretFile(dataDir, 'node-token-key').value);
  const dir = path.join(imagesDir(dataDir), 'debian12');
  mkdirSync(dir, { recursive: true });
  const manifest: ImageManifest = {
    version: 1,
    name: 'debian12',
    createdAt: '2025-01-01T00:00:00.000Z',
    source: { kind: 'import', from: 'test' },
    artefacts: {
      rootfs: { file: 'rootfs.tar.zst', sha256: SHA, size: 4242 },
      kernel: { file: 'vmlinuz', sha256: SHA, size: 10 },
      initrd: { file: 'initrd.img', sha256: SHA, size: 10 },
    },
    torrent: { file: 'rootfs.tar.zst.torrent', infoHash: 'c'.repeat(40), pieceLength: 16384 },
  };
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  // An imported tree without /boot/vmlinuz-*: rootfs only.
  const vendor = path.join(imagesDir(dataDir), 'vendor-os');
  mkdirSync(vendor, { recursive: true });
  writeFileSync(path.join(vendor, 'manifest.json'), JSON.stringify({ ...manifest, name: 'vendor-os', artefacts: { rootfs: manifest.artefacts.rootfs } }));
  server.images.rescan();
  // The lifecycle a booting node has reached when its installer asks: provisioning.
  for (const node of ['node01', 'node02', 'vendor01']) await server.store.recordEvent({ node, event: { type: 'provision_started' } });
});

afterAll(async () => {
  await server?.stop();
});

const fetchPlan = (token?: string): Promise<Response> =>
  fetch(`${server.httpUrl}/node/v1/plan`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });

const planValues = (text: string, key: string): string[] =>
  text.split('\n').filter((l) => l.startsWith(`${key} `)).map((l) => l.slice(key.length + 1));

describe('GET /node/v1/plan', () => {
  it('serves the node its own plan once per token, and refuses and records the second fetch', async () => {
    const token = tokens.issue('node01', '52:54:00:aa:00:01', 600);
    const first = await fetchPlan(token);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe('no-store');
    const text = await first.text();
    expect(planValues(text, 'hostname')).toEqual(['node01']);
    expect(planValues(text, 'net_mac')).toEqual(['52:54:00:aa:00:01']);
    expect(planValues(text, 'disk')).toEqual(['/dev/vda']);
    expect(planValues(text, 'part')).toEqual(['1 64M vfat /boot/efi', '2 rest ext4 /']);
    expect(planValues(text, 'sha256')).toEqual([SHA]);
    expect(planValues(text, 'size')).toEqual(['4242']);
    expect(planValues(text, 'http_url')).toEqual(['http://10.0.0.1:8080/files/images/debian12/rootfs.tar.zst']);
    expect(planValues(text, 'torrent_url')).toEqual(['http://10.0.0.1:8080/files/images/debian12/rootfs.tar.zst.torrent']);
    expect(planValues(text, 'installed_boot')).toEqual(['kernel']);
    // The installed system's first-boot callback: where to call, and the node's long-lived token for that one purpose.
    expect(planValues(text, 'booted_url')).toEqual(['http://10.0.0.1:8080/node/v1/booted']);
    const callback = new CallbackTokens(ensureSecretFile(server.config.dataDir, 'callback-token-key').value);
    expect(planValues(text, 'callback_token').map((t) => callback.verify(t, 'booted'))).toEqual([{ node: 'node01' }]);

    const second = await fetchPlan(token);
    expect(second.status).toBe(409);
    expect(await second.text()).not.toContain('ssh_host_key');
    const events = await server.store.listEvents({ node: 'node01' });
    expect(events.at(-1)?.event).toEqual({ type: 'plan_refused', reason: 'plan already fetched with this token', remote: '127.0.0.1' });
    // An installing node shows the refusal as its stage.
    expect(await server.store.getNode('node01')).toMatchObject({ state: 'provisioning', stage: 'plan-refused' });

    // A fresh token (the next boot) gets a plan again, with the SAME host key: the identity is the node's.
    const again = await (await fetchPlan(tokens.issue('node01', '52:54:00:aa:00:01', 600))).text();
    expect(planValues(again, 'ssh_host_key')).toEqual(planValues(text, 'ssh_host_key'));
  });

  it('keeps host keys on disk 0600, pins them in known_hosts with the address, and authorizes the server key', async () => {
    const text = await (await fetchPlan(tokens.issue('node02', '52:54:00:aa:00:02', 600))).text();
    const dataDir = server.config.dataDir;
    const keyFile = path.join(dataDir, 'nodes', 'node02', 'ssh_host_ed25519_key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(dataDir, 'ssh', 'id_ed25519')).mode & 0o777).toBe(0o600);
    const [type, b64] = planValues(text, 'ssh_host_key')[0]!.split(' ');
    expect(type).toBe('ed25519');
    expect(Buffer.from(b64!, 'base64').toString('utf8')).toBe(readFileSync(keyFile, 'utf8'));
    const pub = readFileSync(`${keyFile}.pub`, 'utf8').trim();
    expect(planValues(text, 'ssh_host_pub')).toEqual([`ed25519 ${pub}`]);
    const serverPub = readFileSync(path.join(dataDir, 'ssh', 'id_ed25519.pub'), 'utf8').trim();
    expect(planValues(text, 'authorized_key')).toEqual([serverPub]);
    const knownHosts = readFileSync(path.join(dataDir, 'ssh', 'known_hosts'), 'utf8');
    const blob = pub.split(' ')[1];
    // node02 has no address in the inventory; node01 (fetched above) is pinned by name and address.
    expect(knownHosts).toContain(`node02 ssh-ed25519 ${blob}\n`);
    expect(knownHosts).toMatch(/^node01,10\.0\.0\.21 ssh-ed25519 \S+$/m);
    // Another node's key never appears in this node's plan.
    const node01Key = readFileSync(path.join(dataDir, 'nodes', 'node01', 'ssh_host_ed25519_key'), 'utf8');
    expect(text).not.toContain(Buffer.from(node01Key).toString('base64'));
  });

  it('refuses no token, a forged one, an expired one, and a token for a node not in the inventory', async () => {
    expect((await fetchPlan()).status).toBe(401);
    const good = tokens.issue('node01', '52:54:00:aa:00:01', 600);
    expect((await fetchPlan(`${good.slice(0, -2)}xx`)).status).toBe(401);
    expect((await fetchPlan(new NodeTokens('another-key').issue('node01', '52:54:00:aa:00:01', 600))).status).toBe(401);
    const past = new NodeTokens(ensureSecretFile(server.config.dataDir, 'node-token-key').value, () => Date.now() - 3_600_000);
    expect((await fetchPlan(past.issue('node01', '52:54:00:aa:00:01', 60))).status).toBe(401);
    expect((await fetchPlan(tokens.issue('stranger', '52:54:00:aa:00:77', 600))).status).toBe(404);
  });

  it('says why when no plan can be made, records it on the node, and does not spend the token', async () => {
    const token = tokens.issue('ghost01', '52:54:00:aa:00:09', 600);
    const r = await fetchPlan(token);
    expect(r.status).toBe(409);
    expect(((await r.json()) as { error: { code: string; message: string } }).error).toEqual({ code: 'IMAGE_NOT_FOUND', message: 'image nosuchimage is not in the catalog (build or import it, then boot the node again)' });
    const events = await server.store.listEvents({ node: 'ghost01' });
    expect(events.at(-1)?.event).toEqual({ type: 'plan_refused', reason: 'image nosuchimage is not in the catalog (build or import it, then boot the node again)', remote: '127.0.0.1' });
    expect(await server.store.useOnce(`plan:ghost01:${tokens.verify(token)!.nonce}`, Date.now() + 60_000)).toBe(true);
  });

  it('refuses a plan whose install could not boot afterwards (installed_boot: kernel, image without a kernel), and records why', async () => {
    const token = tokens.issue('vendor01', '52:54:00:aa:00:03', 600);
    const r = await fetchPlan(token);
    expect(r.status).toBe(409);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/^group vendor boots the image's own kernel \(installed_boot: kernel\), but image vendor-os has no kernel and initrd/);
    const events = await server.store.listEvents({ node: 'vendor01' });
    expect(events.at(-1)?.event).toMatchObject({ type: 'plan_refused', reason: expect.stringMatching(/has no kernel and initrd/) });
    expect(await server.store.useOnce(`plan:vendor01:${tokens.verify(token)!.nonce}`, Date.now() + 60_000)).toBe(true);
  });

  it('a catalogued image whose torrent file is missing answers 404, not 500', async () => {
    const res = await fetch(`${server.httpUrl}/files/images/debian12/rootfs.tar.zst.torrent`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toEqual({ code: 'NOT_FOUND', message: 'image debian12 has no torrent file (rebuild or re-import it)' });
  });

  it('a catalogued image whose torrent file is corrupt answers a 500 that names the image and what to do', async () => {
    const file = path.join(imagesDir(server.config.dataDir), 'debian12', 'rootfs.tar.zst.torrent');
    writeFileSync(file, 'd8:announce5:http:');
    try {
      const res = await fetch(`${server.httpUrl}/files/images/debian12/rootfs.tar.zst.torrent`);
      expect(res.status).toBe(500);
      expect(((await res.json()) as { error: { code: string; message: string } }).error).toEqual({
        code: 'INTERNAL',
        message: 'the torrent file of image debian12 is corrupt (malformed torrent: unterminated dictionary at byte 0): rebuild or re-import the image',
      });
    } finally {
      rmSync(file);
    }
  });

  it('serves no plan to a node that is not installing, and records the refusal in any state (a replayed token)', async () => {
    const token = tokens.issue('node02', '52:54:00:aa:00:02', 600);
    const up = ['installed', 'configure_started', 'ready'] as const;
    for (const type of up) expect((await server.store.recordEvent({ node: 'node02', event: { type } })).ok).toBe(true);
    const r = await fetchPlan(token);
    expect(r.status).toBe(409);
    expect(await r.text()).not.toContain('ssh_host_key');
    const events = await server.store.listEvents({ node: 'node02' });
    expect(events.at(-1)?.event).toEqual({ type: 'plan_refused', reason: 'asked while the node is ready, not installing', remote: '127.0.0.1' });
    expect(await server.store.getNode('node02')).toMatchObject({ state: 'ready' });
    expect(await server.store.getNode('node02')).not.toHaveProperty('stage', 'plan-refused');
    // Installing again (a reimage): served.
    for (const event of [{ type: 'reimage_requested' }, { type: 'provision_started' }] as const) expect((await server.store.recordEvent({ node: 'node02', event })).ok).toBe(true);
    expect((await fetchPlan(tokens.issue('node02', '52:54:00:aa:00:02', 600))).status).toBe(200);
  });

  it('spends the nonce only until the token expires (the single-use key does not outlive it)', async () => {
    const token = tokens.issue('node01', '52:54:00:aa:00:01', 600);
    expect((await fetchPlan(token)).status).toBe(200);
    const key = `plan:node01:${tokens.verify(token)!.nonce}`;
    const expiresAt = tokens.verify(token)!.expiresAt;
    expect(await server.store.useOnce(key, expiresAt, expiresAt - 1000)).toBe(false);
    expect(await server.store.useOnce(key, expiresAt + 600_000, expiresAt + 1)).toBe(true);
  });
});

describe('wipe: boot script, plan and report', () => {
  const report = (token: string, body: unknown) =>
    fetch(`${server.httpUrl}/node/v1/report`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });

  it('a node with a wipe requested boots the installer, gets a plan with the mode and no secret, once, and reports what it erased', async () => {
    // ghost01's group names an image that does not exist: a wipe needs none, only the installer.
    writeStandInInstaller(server.config.dataDir);
    expect((await server.store.recordEvent({ node: 'ghost01', event: { type: 'wipe_requested', mode: 'quick' } })).ok).toBe(true);
    const script = await (await fetch(`${server.httpUrl}/ipxe/machine?mac=${MACS.ghost01}`)).text();
    expect(script, script).toContain("echo rackseed: wiping the disks of ghost01 (quick)");
    const token = /rackseed\.token=(\S+)/.exec(script)?.[1];
    expect(token).toBeDefined();
    expect(await server.store.getNode('ghost01')).toMatchObject({ state: 'wiping', wipeRequested: 'quick' });

    // Anyone on the boot network can get a boot script, and its token, by MAC: such a token, never used for the wipe
    // plan, cannot mark the machine erased (it did, with a 204, and the next boot started the intact disk).
    const bystander = /rackseed\.token=(\S+)/.exec(await (await fetch(`${server.httpUrl}/ipxe/machine?mac=${MACS.ghost01}`)).text())![1]!;
    const forged = await report(bystander, { wiped: { mode: 'quick', disks: [{ name: 'vda', bytes: 1 }] } });
    expect(forged.status).toBe(409);
    expect(await server.store.getNode('ghost01')).toMatchObject({ state: 'wiping' });
    expect((await fetchPlan(bystander)).status).toBe(409);

    const plan = await fetchPlan(token);
    expect(plan.status).toBe(200);
    const text = await plan.text();
    const reportToken = planValues(text, 'report_token')[0]!;
    expect(text).toBe(`# rackseed wipe plan v1\nversion 1\naction wipe\nhostname ghost01\nmode quick\nreport_url http://10.0.0.1:8080/node/v1/report\nreport_token ${reportToken}\nend\n`);
    expect(text).not.toContain('ssh_host_key');
    // The report token outlives a full wipe of large disks (the boot token lives hours), and fetches no plan.
    const claims = tokens.verify(reportToken)!;
    expect(claims).toMatchObject({ node: 'ghost01', mac: MACS.ghost01 });
    expect(claims.expiresAt - Date.now()).toBeGreaterThan(13 * 24 * 3600 * 1000);
    expect((await fetchPlan(reportToken)).status).toBe(409);
    expect((await fetchPlan(token)).status).toBe(409);

    expect((await report(reportToken, { stage: 'wipe', detail: { disk: 'vda', pass: 'start', bytes: 0, size: 1024 } })).status).toBe(204);
    expect(await server.store.getNode('ghost01')).toMatchObject({ state: 'wiping', stage: 'wipe' });
    for (const bad of [{ mode: 'quick', disks: [] }, { mode: 'secure', disks: [{ name: 'vda', bytes: 1 }] }, { mode: 'quick', disks: [{ name: '../x', bytes: 1 }] }, { mode: 'quick', disks: [{ name: 'vda', bytes: -1 }] }, 'yes']) {
      const r = await report(reportToken, { wiped: bad });
      expect(r.status, JSON.stringify(bad)).toBe(400);
    }
    const disks = [{ name: 'vda', bytes: 1024, model: '', serial: 'QM00001', wwid: '' }, { name: 'nvme0n1', bytes: 2048, model: 'SAMSUNG MZQL23T8HCLS-00A07\u001b[2J', serial: 'S64HNE0T123456', wwid: 'eui.36344830526012340025384500000001' }];
    const skipped = [{ name: 'sdb', why: 'removable' }];
    expect((await report(reportToken, { wiped: { mode: 'quick', disks, skipped } })).status).toBe(204);
    const done = await server.store.getNode('ghost01');
    expect(done?.state).toBe('wiped');
    expect(done).not.toHaveProperty('wipeRequested');
    // Kept for the record of what was erased: empty identity fields dropped, escapes made harmless, where it came from.
    expect((await server.store.listEvents({ node: 'ghost01' })).at(-1)?.event).toEqual({
      type: 'wiped',
      mode: 'quick',
      disks: [{ name: 'vda', bytes: 1024, serial: 'QM00001' }, { name: 'nvme0n1', bytes: 2048, model: 'SAMSUNG MZQL23T8HCLS-00A07 [2J', serial: 'S64HNE0T123456', wwid: 'eui.36344830526012340025384500000001' }],
      skipped,
      remote: '127.0.0.1',
    });
    // Its next boot: nothing to boot until it is reimaged, and no token to spend.
    const after = await (await fetch(`${server.httpUrl}/ipxe/machine?mac=${MACS.ghost01}`)).text();
    expect(after).toContain('its disks were wiped (rackseed wipe): reimage it to install it again');
    expect(after).not.toContain('rackseed.token=');
  });

  it('a failed wipe is recorded in stage wipe and not started again at the next boot', async () => {
    expect((await server.store.recordEvent({ node: 'ghost01', event: { type: 'wipe_requested', mode: 'full' } })).ok).toBe(true);
    const script = await (await fetch(`${server.httpUrl}/ipxe/machine?mac=${MACS.ghost01}`)).text();
    const token = /rackseed\.token=(\S+)/.exec(script)![1]!;
    expect((await report(token, { failed: 'writing zeros to /dev/vda at byte 0 failed: Input/output error', stage: 'wipe' })).status).toBe(204);
    expect(await server.store.getNode('ghost01')).toMatchObject({ state: 'failed', stage: 'wipe', reason: 'writing zeros to /dev/vda at byte 0 failed: Input/output error' });
    const next = await (await fetch(`${server.httpUrl}/ipxe/machine?mac=${MACS.ghost01}`)).text();
    expect(next).toContain('wiping its disks failed (writing zeros to /dev/vda at byte 0 failed: Input/output error): wipe it again, or reimage it');
    expect(next).not.toContain('rackseed.token=');
  });
});

describe('GET /node/v1/plan when the server hands out the addresses (full DHCP mode)', () => {
  let app: Server;
  let url: string;
  beforeAll(async () => {
    const dataDir = server.config.dataDir;
    const a = express();
    a.use(
      '/node/v1',
      nodeRoutes({
        tokens,
        store: server.store,
        log: server.log,
        plan: { tokens, store: server.store, inventory: server.inventory, images: server.images, identity: new NodeIdentity(dataDir), baseUrl: 'http://10.0.0.1:8080', log: server.log, addressOf: dhcpAddressOf(server.store) },
      }),
    );
    app = await new Promise<Server>((resolve) => {
      const s = a.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(app.address() as AddressInfo).port}/node/v1/plan`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => (app ? app.close(() => resolve()) : resolve()));
  });
  const get = (token: string, method = 'GET') => fetch(url, { method, headers: { authorization: `Bearer ${token}` } });

  it('refuses the plan to any address but the node\'s reservation or bound lease, records it, and keeps the token', async () => {
    // node01 is reserved 10.0.0.21; this request comes from 127.0.0.1, like a machine that only knows the MAC.
    const token = tokens.issue('node01', '52:54:00:aa:00:01', 600);
    const refused = await get(token);
    expect(refused.status).toBe(403);
    expect(await refused.text()).not.toContain('ssh_host_key');
    const events = await server.store.listEvents({ node: 'node01' });
    expect(events.at(-1)?.event).toMatchObject({ type: 'plan_refused', reason: "asked from 127.0.0.1, not the node's address 10.0.0.21" });
    expect(await server.store.useOnce(`plan:node01:${tokens.verify(token)!.nonce}`, Date.now() + 60_000)).toBe(true);

    // node02 has no reservation: without a bound lease there is no address to check, and the plan is refused (an
    // installing node in full mode always holds one); a bound lease elsewhere refuses; its own lease is served.
    const noLease = await get(tokens.issue('node02', '52:54:00:aa:00:02', 600));
    expect(noLease.status).toBe(403);
    expect((await server.store.listEvents({ node: 'node02' })).at(-1)?.event).toMatchObject({ type: 'plan_refused', reason: 'asked from 127.0.0.1; the node has no reservation and no bound lease' });
    const lease = { ip: '10.0.0.99', mac: '52:54:00:aa:00:02', state: 'bound' as const, expiresAt: Date.now() + 3_600_000 };
    expect((await server.store.claimLease(lease)).ok).toBe(true);
    expect((await get(tokens.issue('node02', '52:54:00:aa:00:02', 600))).status).toBe(403);
    expect((await server.store.claimLease({ ...lease, ip: '127.0.0.1' })).ok).toBe(true);
    const served = await get(tokens.issue('node02', '52:54:00:aa:00:02', 600));
    expect(served.status).toBe(200);
    expect(await served.text()).toContain('hostname node02');
  });

  it('a lease released by anyone (DHCPRELEASE is unauthenticated) does not turn the address check off', async () => {
    await server.store.releaseLease('127.0.0.1', '52:54:00:aa:00:02');
    const token = tokens.issue('node02', '52:54:00:aa:00:02', 600);
    expect((await get(token)).status).toBe(403);
    expect(await server.store.useOnce(`plan:node02:${tokens.verify(token)!.nonce}`, Date.now() + 60_000)).toBe(true);
  });

  it('answers HEAD with 405 without spending the single-use token', async () => {
    expect((await server.store.claimLease({ ip: '127.0.0.1', mac: '52:54:00:aa:00:02', state: 'bound', expiresAt: Date.now() + 3_600_000 })).ok).toBe(true);
    const token = tokens.issue('node02', '52:54:00:aa:00:02', 600);
    expect((await get(token, 'HEAD')).status).toBe(405);
    expect((await get(token)).status).toBe(200);
  });

  it('takes installer reports only from the node\'s own address: a machine that only knows the MAC cannot mark it installed or failed', async () => {
    const report = (node: string, body: unknown) =>
      fetch(url.replace('/plan', '/report'), { method: 'POST', headers: { authorization: `Bearer ${tokens.issue(node, MACS[node]!, 600)}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    // node01 is reserved 10.0.0.21; this comes from 127.0.0.1. Before: 204, and the node was marked failed.
    const before = (await server.store.getNode('node01'))?.state;
    const forged = await report('node01', { failed: 'disk on fire', stage: 'partition' });
    expect(forged.status).toBe(403);
    expect((await server.store.getNode('node01'))?.state).toBe(before);
    // node02's bound lease is 127.0.0.1 (the test before): its own reports are taken.
    expect((await report('node02', { stage: 'download', detail: { bytes: 1 } })).status).toBe(204);
  });
});
