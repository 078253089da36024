import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientContext } from '../../server/cli/context.js';
import { readyToProvision } from '../support/installer.js';
import { startTestServer, type TestServer } from '../support/server.js';

let srv: TestServer;
// Response bodies are checked field by field below; their shape is what is under test.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const body = async (res: Response): Promise<any> => res.json();
const api = (path: string, init: RequestInit = {}, token: string | null = srv.adminToken) =>
  fetch(`${srv.httpUrl}${path}`, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) } });

beforeAll(async () => {
  // No seeder: it would announce the image to the public URL's tracker, an address outside this machine.
  srv = await startTestServer({ inventoryFixture: 'api/inventory.yaml', extraConfig: 'torrent:\n  enabled: false' });
  await readyToProvision(srv);
});
afterAll(async () => {
  await srv?.stop();
});

describe('admin API auth', () => {
  it('refuses requests without a token with 401 and a JSON error code', async () => {
    const res = await api('/api/v1/nodes', {}, null);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/Bearer/);
    expect(await body(res)).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.stringMatching(/missing admin token/) } });
  });
  it('refuses a wrong token', async () => {
    const res = await api('/api/v1/status', {}, 'not-the-token-at-all-not-the-token-at-all');
    expect(res.status).toBe(401);
    expect((await body(res)).error.code).toBe('UNAUTHORIZED');
  });
  it('stores the generated token with mode 0600', async () => {
    const { statSync } = await import('node:fs');
    const st = statSync(`${srv.config.dataDir}/admin-token`);
    expect(st.mode & 0o777).toBe(0o600);
    expect(readFileSync(`${srv.config.dataDir}/admin-token`, 'utf8').trim()).toBe(srv.adminToken);
  });
  it('every answer, not only the dashboard\'s, forbids type sniffing and referrers', async () => {
    for (const path of ['/healthz', '/boot.ipxe', '/api/v1/nodes', '/no/such/path', '/ipxe/machine']) {
      const res = await fetch(`${srv.httpUrl}${path}`);
      expect([path, res.headers.get('x-content-type-options'), res.headers.get('referrer-policy')]).toEqual([path, 'nosniff', 'no-referrer']);
    }
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await api('/api/v1/nope');
    expect(res.status).toBe(404);
    expect((await body(res)).error.code).toBe('NOT_FOUND');
  });
});

describe('admin API resources', () => {
  it('lists inventory nodes, each assigned at start', async () => {
    const { nodes } = await body(await api('/api/v1/nodes'));
    expect(nodes.map((n: { name: string }) => n.name)).toEqual(['head01', 'gpu01', 'gpu02']);
    expect(nodes.every((n: { state: string }) => n.state === 'assigned')).toBe(true);
    expect(nodes[1]).toMatchObject({ group: 'gpu', ip: '10.0.1.11', rack: 'r1', slot: 1 });
  });
  it('shows groups with their nodes', async () => {
    const { group } = await body(await api('/api/v1/groups/gpu'));
    expect(group).toMatchObject({ name: 'gpu', nodes: ['gpu01', 'gpu02'], hardware: { gpu: { model: 'H100', count: 8, memoryMiB: 81559 } } });
    expect((await api('/api/v1/groups/nope')).status).toBe(404);
  });
  it('reports fleet status counts', async () => {
    const s = await body(await api('/api/v1/status'));
    expect(s).toMatchObject({ nodes: 3, byState: { assigned: 3 } });
  });
  it('rejects malformed JSON with a JSON 400', async () => {
    const res = await api('/api/v1/nodes', { method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect((await body(res)).error.code).toBe('BAD_REQUEST');
  });
  it('adds a node to the inventory file, keeping its comments', async () => {
    const res = await api('/api/v1/nodes', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'head02', macs: ['52-54-00-00-00-09'], ip: '10.0.0.3', group: 'head' }),
    });
    expect(res.status).toBe(201);
    expect((await body(res)).node).toMatchObject({ name: 'head02', macs: ['52:54:00:00:00:09'], state: 'assigned' });
    const text = readFileSync(srv.inventoryFile, 'utf8');
    expect(text).toContain('# the head node');
    expect(text).toContain('head02');
  });
  it('refuses a node body with a wrong type or unknown key, naming the field, instead of dropping it', async () => {
    const post = (b: unknown) => api('/api/v1/nodes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) });
    const cases: Array<[unknown, RegExp]> = [
      [{ name: 'head04', macs: ['52:54:00:00:00:0a'], slot: '3' }, /^"slot": .*number/],
      [{ name: 'head04', macs: ['52:54:00:00:00:0a'], ip: 10 }, /^"ip": /],
      [{ name: 'head04', macs: ['52:54:00:00:00:0a'], bmc: { address: 5 } }, /^"bmc\.address": /],
      [{ name: 'head04', macs: ['52:54:00:00:00:0a'], bmc: { address: '10.1.0.4', boot_mode: 'efi' } }, /^"bmc\.boot_mode": /],
      [{ name: 'head04', macs: ['52:54:00:00:00:0a'], grup: 'head' }, /grup/],
      [{ name: 'head04', mac: '52:54:00:00:00:0a', macs: ['52:54:00:00:00:0b'] }, /"macs" \(a list\) or one as "mac"/],
      [{ name: 'head04' }, /"macs"/],
      [[1, 2], /expected object/],
    ];
    for (const [b, message] of cases) {
      const res = await post(b);
      expect(res.status, JSON.stringify(b)).toBe(400);
      const { error } = await body(res);
      expect(error.code).toBe('BAD_REQUEST');
      expect(error.message).toMatch(message);
    }
    expect(readFileSync(srv.inventoryFile, 'utf8')).not.toContain('head04');
  });
  it('refuses a duplicate MAC and names both entries', async () => {
    const res = await api('/api/v1/nodes', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'head03', macs: ['52:54:00:00:00:01'], group: 'head' }),
    });
    expect(res.status).toBe(409);
    const { error } = await body(res);
    expect(error.code).toBe('INVENTORY_DUPLICATE');
    expect(error.message).toMatch(/head01/);
    expect(error.message).toMatch(/head03/);
  });
});

describe('iPXE over HTTP', () => {
  it('serves the entry script without a token', async () => {
    const res = await fetch(`${srv.httpUrl}/boot.ipxe`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^#!ipxe\n[\s\S]*chain --autofree http:\/\/10\.0\.0\.1:8080\/ipxe\/machine\?mac=\$\{mac:hexhyp\}/);
  });
  it('registers an unknown machine as discovered with its SMBIOS facts and sends it to the next boot device', async () => {
    const q = 'mac=52-54-00-aa-bb-cc&uuid=4c4c4544-0042-3010&serial=SN123&manufacturer=Dell%20Inc.&product=PowerEdge%20R650&platform=efi&buildarch=x86_64';
    const res = await fetch(`${srv.httpUrl}/ipxe/machine?${q}`);
    const text = await res.text();
    expect(text).toContain('is not in the inventory');
    // A failure status, flagged as intended: UEFI firmware goes on to its next boot entry only after a failure.
    expect(text.trimEnd().split('\n').slice(-2)).toEqual(['set rackseed_next_device 1', 'exit 1']);
    const status = await srv.store.getNode('52:54:00:aa:bb:cc');
    expect(status).toMatchObject({ state: 'discovered', facts: { uuid: '4c4c4544-0042-3010', serial: 'SN123', product: 'PowerEdge R650', platform: 'efi' } });
    const { node, events } = await body(await api('/api/v1/nodes/52:54:00:aa:bb:cc'));
    expect(node).toMatchObject({ inInventory: false, state: 'discovered' });
    expect(events[0].event.type).toBe('discovered');
  });
  it('without the installer built, a node is told so (no server path in the unauthenticated script) and stays assigned', async () => {
    const kernel = path.join(srv.config.dataDir, 'files', 'installer', 'vmlinuz');
    renameSync(kernel, `${kernel}.away`);
    try {
      const text = await (await fetch(`${srv.httpUrl}/ipxe/machine?mac=52:54:00:00:00:01&platform=pcbios`)).text();
      expect(text).toContain('echo rackseed: head01 cannot be provisioned: the installer is not built (rackseed installer build)');
      expect(text).not.toContain(srv.config.dataDir);
      expect((await srv.store.getNode('head01'))?.state).toBe('assigned');
    } finally {
      renameSync(`${kernel}.away`, kernel);
    }
  });
  it('hands a known node its provisioning script and records provisioning', async () => {
    const text = await (await fetch(`${srv.httpUrl}/ipxe/machine?mac=52:54:00:00:00:01&platform=pcbios`)).text();
    expect(text).toContain('kernel http://10.0.0.1:8080/files/installer/vmlinuz initrd=initrd.img console=ttyS0 rackseed.server=http://10.0.0.1:8080 rackseed.node=head01');
    expect((await srv.store.getNode('head01'))?.state).toBe('provisioning');
  });
  it('a discovered machine added to the inventory keeps its facts and becomes assigned', async () => {
    await fetch(`${srv.httpUrl}/ipxe/machine?mac=52:54:00:aa:bb:dd&serial=LATE1`);
    await api('/api/v1/nodes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'late01', macs: ['52:54:00:aa:bb:dd'], group: 'head' }) });
    const st = await srv.store.getNode('late01');
    expect(st).toMatchObject({ state: 'assigned', facts: { serial: 'LATE1' } });
    expect(await srv.store.getNode('52:54:00:aa:bb:dd')).toBeUndefined();
  });
  it('puts a per-node report token on the installer command line; the node reports with it, for itself only', async () => {
    const script = await (await fetch(`${srv.httpUrl}/ipxe/machine?mac=52:54:00:00:00:01`)).text();
    const token = /rackseed\.token=(\S+)/.exec(script)?.[1];
    expect(token).toMatch(/^v2\.head01\.[0-9a-f]{12}\./);
    const report = (body: unknown, t: string | null = token ?? null) =>
      fetch(`${srv.httpUrl}/node/v1/report`, { method: 'POST', headers: { 'content-type': 'application/json', ...(t ? { authorization: `Bearer ${t}` } : {}) }, body: JSON.stringify(body) });
    expect((await report({ stage: 'download', detail: { bytes: 1024 } })).status).toBe(204);
    expect((await srv.store.getNode('head01'))?.stage).toBe('download');
    const events = await srv.store.listEvents({ node: 'head01' });
    expect(events.at(-1)?.event).toEqual({ type: 'stage', stage: 'download', detail: { bytes: 1024 } });
    expect((await report({ stage: 'x' }, null)).status).toBe(401);
    expect((await report({ stage: 'x' }, srv.adminToken)).status).toBe(401);
    expect((await report({ stage: 'x' }, token!.replace('head01', 'gpu01'))).status).toBe(401);
    expect((await report({ nonsense: true })).status).toBe(400);
    // The end of the install names the image it verified; a malformed one is refused, not recorded as unknown.
    for (const image of [{ name: 'debian12' }, { name: '../x', sha256: 'a'.repeat(64) }, { name: 'debian12', sha256: 'A'.repeat(64) }, 'debian12', null]) {
      expect((await report({ installed: true, image })).status).toBe(400);
    }
    expect((await srv.store.getNode('head01'))?.state).toBe('provisioning');
    const image = { name: 'debian12', sha256: 'e'.repeat(64) };
    expect((await report({ installed: true, image })).status).toBe(204);
    expect(await srv.store.getNode('head01')).toMatchObject({ state: 'installed', installedImage: image });
    // A node that is not provisioning cannot report install stages.
    expect((await report({ stage: 'download' })).status).toBe(409);
  });
  it('a failure after install (states, readiness) keeps the installed OS booting; an installer failure never passes for one', async () => {
    // head01 is installed (the test above): the server's own readiness check fails it.
    await srv.store.recordEvent({ node: 'head01', event: { type: 'failed', reason: 'slurmd not idle', stage: 'readiness' } });
    const head01 = await (await fetch(`${srv.httpUrl}/ipxe/machine?mac=52:54:00:00:00:01`)).text();
    expect(head01).toContain('rackseed: head01 boots from its local disk');
    // head02 (added above) provisions; its installer fails and names a post-install stage, by mistake or on purpose.
    const script = await (await fetch(`${srv.httpUrl}/ipxe/machine?mac=52:54:00:00:00:09`)).text();
    const token = /rackseed\.token=(\S+)/.exec(script)?.[1];
    expect(token).toMatch(/^v2\.head02\.[0-9a-f]{12}\./);
    const res = await fetch(`${srv.httpUrl}/node/v1/report`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ failed: 'disk vanished', stage: 'readiness' }) });
    expect(res.status).toBe(204);
    expect(await srv.store.getNode('head02')).toMatchObject({ state: 'failed', stage: 'install', reason: 'disk vanished' });
    const head02 = await (await fetch(`${srv.httpUrl}/ipxe/machine?mac=52:54:00:00:00:09`)).text();
    expect(head02).toContain('rackseed: head02 cannot be provisioned: install failed (disk vanished)');

    // A reason is one printable line of at most 500 characters: no terminal escapes, no half emoji at the cut, and a
    // mark where it was cut (else a wipe's cut list of failed disks reads as the whole list).
    const hostile = `ok\u001b]0;owned\u0007\u001b[2J\n${'\u{1F600}'.repeat(600)}`;
    const again = await fetch(`${srv.httpUrl}/node/v1/report`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ failed: hostile, stage: 'download' }) });
    expect(again.status).toBe(204);
    const reason = (await srv.store.getNode('head02'))?.reason ?? '';
    expect(Array.from(reason)).toHaveLength(500);
    expect(reason.startsWith('ok ]0;owned  [2J \u{1F600}')).toBe(true);
    expect(reason.endsWith('\u{1F600} [...]')).toBe(true);
    expect(reason).not.toMatch(/[\u0000-\u001f\uFFFD]/);

    // Reinstalled: nested stage details are cleaned at every depth and bounded, and so are SMBIOS strings (C1 too).
    expect((await srv.store.recordEvent({ node: 'head02', event: { type: 'reimage_requested' } })).ok).toBe(true);
    const reinstall = await (await fetch(`${srv.httpUrl}/ipxe/machine?mac=52:54:00:00:00:09&serial=SN%C2%9B2J%1B1`)).text();
    expect((await srv.store.getNode('head02'))?.facts).toMatchObject({ serial: 'SN 2J 1' });
    const token2 = /rackseed\.token=(\S+)/.exec(reinstall)?.[1];
    const detail = { bytes: 5, nested: { msg: `\u001b]0;pwned\u0007${'A'.repeat(30_000)}`, list: ['\u009b2J', 7, { deeper: { deepest: 'x' } }] } };
    const staged = await fetch(`${srv.httpUrl}/node/v1/report`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token2}` }, body: JSON.stringify({ stage: 'download', detail }) });
    expect(staged.status).toBe(204);
    const stored = (await srv.store.listEvents({ node: 'head02' })).at(-1)?.event;
    expect(stored).toMatchObject({ type: 'stage', stage: 'download' });
    const nested = (stored as unknown as { detail: { bytes: number; nested: { msg: string; list: unknown[] } } }).detail;
    expect(nested.bytes).toBe(5);
    expect(nested.nested.msg.startsWith(' ]0;pwned AAA')).toBe(true);
    expect(Array.from(nested.nested.msg)).toHaveLength(200);
    // Three levels are kept: an object inside the list (a fourth) is dropped, as null.
    expect(nested.nested.list).toEqual([' 2J', 7, null]);
  });

  it('refuses a request without a valid MAC', async () => {
    expect((await fetch(`${srv.httpUrl}/ipxe/machine?mac=zz`)).status).toBe(400);
  });
  it('serves the iPXE binaries over HTTP for UEFI HTTP-boot clients', async () => {
    const res = await fetch(`${srv.httpUrl}/ipxe/snponly.efi`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync('/usr/lib/ipxe/snponly.efi'))).toBe(true);
    expect((await fetch(`${srv.httpUrl}/ipxe/nope.efi`)).status).toBe(404);
    expect((await fetch(`${srv.httpUrl}/ipxe/..%2f..%2f..%2fetc%2fpasswd`)).status).toBeGreaterThanOrEqual(400);
  });

  it('does not serve files outside the files directory', async () => {
    for (const p of ['/files/../admin-token', '/files/%2e%2e/admin-token', '/files/..%2fadmin-token']) {
      const res = await fetch(`${srv.httpUrl}${p}`);
      expect(res.status, p).toBeGreaterThanOrEqual(400);
      expect(await res.text()).not.toContain(srv.adminToken);
    }
  });
});

describe('files and errors reveal nothing outside their roots', () => {
  it('a symlink under /files that leads out of it (to the admin token, to /etc) is a 404; a file inside is served', async () => {
    const files = path.join(srv.config.dataDir, 'files');
    mkdirSync(path.join(files, 'installer'), { recursive: true });
    writeFileSync(path.join(files, 'installer', 'ok.txt'), 'inside\n');
    symlinkSync(path.join(srv.config.dataDir, 'admin-token'), path.join(files, 'installer', 'token-link'));
    symlinkSync('/etc', path.join(files, 'etcdir'));
    symlinkSync('ok.txt', path.join(files, 'installer', 'inner-link'));
    expect(await (await fetch(`${srv.httpUrl}/files/installer/ok.txt`)).text()).toBe('inside\n');
    expect(await (await fetch(`${srv.httpUrl}/files/installer/inner-link`)).text()).toBe('inside\n');
    for (const p of ['/files/installer/token-link', '/files/etcdir/passwd', '/files/etcdir/hostname']) {
      const res = await fetch(`${srv.httpUrl}${p}`);
      expect(res.status, p).toBe(404);
      const text = await res.text();
      expect(text).not.toContain(srv.adminToken);
      expect(JSON.parse(text)).toEqual({ error: { code: 'NOT_FOUND', message: `no file ${p}` } });
    }
  });
  it('a missing file is NOT_FOUND without the server\'s paths', async () => {
    const res = await fetch(`${srv.httpUrl}/files/nope`);
    expect(res.status).toBe(404);
    const text = await res.text();
    expect(text).not.toContain(srv.config.dataDir);
    expect(JSON.parse(text).error).toEqual({ code: 'NOT_FOUND', message: 'no file /files/nope' });
  });
  it('a repeated query parameter is a 400, not a dropped filter', async () => {
    const res = await api('/api/v1/events?node=a&node=b');
    expect(res.status).toBe(400);
    expect((await body(res)).error).toEqual({ code: 'BAD_REQUEST', message: 'query parameter "node" must be given once' });
  });
  it('a node report without a valid token is a 401 before its body is parsed', async () => {
    const res = await fetch(`${srv.httpUrl}/node/v1/report`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    expect(res.status).toBe(401);
    expect((await body(res)).error.code).toBe('UNAUTHORIZED');
    // Every /node/v1 path: the first-boot callback checks its token first too, and an unknown path is a 404.
    const booted = await fetch(`${srv.httpUrl}/node/v1/booted`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    expect([booted.status, (await body(booted)).error.code]).toEqual([401, 'UNAUTHORIZED']);
    const unknown = await fetch(`${srv.httpUrl}/node/v1/anything`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    expect([unknown.status, (await body(unknown)).error.code]).toEqual([404, 'NOT_FOUND']);
  });
  it('the CLI reaches a server listening on an IPv6 address through a bracketed URL', () => {
    const dir = path.join(srv.dir, 'v6');
    mkdirSync(path.join(dir, 'data'), { recursive: true });
    writeFileSync(path.join(dir, 'data', 'admin-token'), `${'t'.repeat(40)}\n`, { mode: 0o600 });
    writeFileSync(path.join(dir, 'rackseed.yaml'), 'data_dir: ./data\nhttp:\n  listen: "::1"\n  port: 18080\n');
    expect(clientContext({ config: path.join(dir, 'rackseed.yaml') }, () => undefined).client.baseUrl).toBe('http://[::1]:18080');
  });
});
