import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import path from 'node:path';
import express from 'express';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardRoutes } from '../../server/net/http/dashboard/routes.js';
import type { StateResult } from '../../server/state/types.js';
import type { LifecycleEvent } from '../../server/model/lifecycle.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * The dashboard in a real headless Chromium (Debian's, never a downloaded one) against an in-process rackseed on
 * loopback. Lifecycle events are recorded straight into the server's store, as the node API would, and the page
 * must follow them over server-sent events without reloading.
 */

const ARTIFACTS = path.resolve(import.meta.dirname, '..', '..', 'test-artifacts');
const RACKS = ['r1', 'r2', 'r3'];
const SLOTS = [1, 2, 3, 4];
const hex = (n: number) => n.toString(16).padStart(2, '0');
const rackNode = (r: number, s: number) => `n${r + 1}-${s}`;
const ALL_NODES = ['head01', ...RACKS.flatMap((_, r) => SLOTS.map((s) => rackNode(r, s)))];

const INVENTORY = [
  'cluster:',
  '  name: e2e',
  'groups:',
  '  head:',
  '    image: debian12',
  '    roles: [base, slurm-controller]',
  '  compute:',
  '    image: debian12',
  '    roles: [base, slurm-compute, nvidia]',
  'nodes:',
  '  - name: head01',
  '    mac: 52:54:00:aa:00:01',
  '    ip: 10.0.0.2',
  '    group: head',
  ...RACKS.flatMap((rack, r) =>
    SLOTS.flatMap((s) => [
      `  - name: ${rackNode(r, s)}`,
      `    mac: 52:54:00:00:${hex(r + 1)}:${hex(s)}`,
      `    ip: 10.0.${r + 1}.${s + 10}`,
      '    group: compute',
      `    rack: ${rack}`,
      `    slot: ${s}`,
      '    labels: { gpu: h100 }',
    ]),
  ),
  '',
].join('\n');

/** The browser's globals as the callbacks below use them (this project compiles without the DOM library). */
interface BrowserWindow {
  rackseedLive?: { open: boolean };
  marker?: string;
  __pwned?: number;
  getComputedStyle(el: unknown): { backgroundColor: string };
  document: { querySelector(selector: string): { textContent: string | null } | null };
}

let srv: TestServer;
let ui: Server;
let base: string;
let browser: Browser;
let context: BrowserContext;

async function record(node: string, event: LifecycleEvent): Promise<number> {
  const r = await srv.store.recordEvent({ node, event });
  if (!r.ok) throw new Error(`event refused: ${r.error}`);
  return r.event.id;
}

async function login(page: Page, token: string): Promise<void> {
  await page.goto(`${base}/ui/login`);
  await page.fill('#token', token);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

/** Counts navigations of the main frame from now on: a live update must not cause one. */
function navigationCounter(page: Page): { count: number } {
  const counter = { count: 0 };
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) counter.count++;
  });
  return counter;
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  srv = await startTestServer();
  writeFileSync(srv.inventoryFile, INVENTORY);
  await srv.inventory.reload();
  const app = express();
  app.use('/ui', dashboardRoutes({ inventory: srv.inventory, store: srv.store, adminToken: srv.adminToken, serverName: 'e2e-server', log: srv.log }));
  ui = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(ui.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
});

afterAll(async () => {
  await browser?.close();
  // Open event streams would keep close() waiting for them.
  ui?.closeAllConnections();
  await new Promise<void>((resolve) => (ui ? ui.close(() => resolve()) : resolve()));
  await srv?.stop();
});

describe('dashboard access', () => {
  it('redirects an unauthenticated page request to the login form', async () => {
    const res = await fetch(`${base}/ui/`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/ui/login?next=%2Fui%2F');
  });

  it('refuses the event stream without a session', async () => {
    const res = await fetch(`${base}/ui/events`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
  });

  it('serves its script and stylesheet without a session, with a strict content security policy', async () => {
    const js = await fetch(`${base}/ui/static/dashboard.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(js.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect((await fetch(`${base}/ui/static/nope.js`)).status).toBe(404);
    const login = await fetch(`${base}/ui/login`);
    expect(login.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'self'/);
    expect(login.headers.get('x-frame-options')).toBe('DENY');
  });

  it('refuses a cross-site login post', async () => {
    const res = await fetch(`${base}/ui/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: srv.adminToken }).toString(),
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('decides on Sec-Fetch-Site when the browser sends it: behind a proxy that rewrites Host, a same-origin login works', async () => {
    const post = (headers: Record<string, string>) =>
      fetch(`${base}/ui/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ token: srv.adminToken }).toString(),
      });
    // nginx's default: Host is the upstream's, Origin the public name the browser used.
    expect((await post({ origin: 'https://rackseed.example', 'sec-fetch-site': 'same-origin' })).status).toBe(303);
    expect((await post({ origin: 'https://rackseed.example', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await post({ origin: new URL(base).origin, 'sec-fetch-site': 'same-site' })).status).toBe(403);
  });

  it('refuses a wrong token in the browser and sets no session', async () => {
    const page = await context.newPage();
    await login(page, 'not-the-admin-token');
    expect(await page.textContent('.error')).toContain('not the admin token');
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    expect(await context.cookies()).toEqual([]);
    await page.close();
  });

  it('logs in with the admin token: an HttpOnly, SameSite=Strict session scoped to /ui, not the token itself', async () => {
    const page = await context.newPage();
    await login(page, srv.adminToken);
    expect(new URL(page.url()).pathname).toBe('/ui/');
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ name: 'rackseed_ui', httpOnly: true, sameSite: 'Strict', path: '/ui' });
    expect(cookies[0]!.value).not.toContain(srv.adminToken);
    await page.close();
  });
});

describe('rack view', () => {
  let page: Page;
  beforeAll(async () => {
    page = await context.newPage();
    await page.goto(`${base}/ui/`);
  });
  afterAll(async () => {
    await page?.close();
  });

  it('renders every inventory node exactly once, racks as columns', async () => {
    const cells = await page.$$eval('a.node[data-node]', (els) => els.map((e) => e.getAttribute('data-node')));
    expect(cells.length).toBe(ALL_NODES.length);
    expect([...cells].sort()).toEqual([...ALL_NODES].sort());
    expect(await page.$$eval('table.racks thead th', (ths) => ths.map((t) => t.textContent?.trim()))).toEqual(['slot', ...RACKS]);
    expect(await page.$$eval('#unracked a.node', (els) => els.map((e) => e.getAttribute('data-node')))).toEqual(['head01']);
    // Slot 4 is the top row; n2-4 sits in the second (r2) column.
    const topRow = await page.$$eval('table.racks tbody tr:first-child td', (tds) => tds.map((td) => td.textContent));
    expect(topRow[1]).toContain('n2-4');
    expect(await page.getAttribute('[data-node="n2-4"]', 'data-state')).toBe('assigned');
    expect(await page.textContent('[data-summary-state="assigned"]')).toBe(String(ALL_NODES.length));
  });

  it('recolours a node when the server records a lifecycle event, without a reload', async () => {
    await page.waitForFunction(() => (globalThis as unknown as BrowserWindow).rackseedLive?.open === true);
    await page.evaluate(() => ((globalThis as unknown as BrowserWindow).marker = 'still-here'));
    const navigations = navigationCounter(page);
    const cell = page.locator('[data-node="n2-3"]');
    const before = await cell.evaluate((el) => (globalThis as unknown as BrowserWindow).getComputedStyle(el).backgroundColor);

    await record('n2-3', { type: 'provision_started' });
    await page.waitForSelector('[data-node="n2-3"][data-state="provisioning"]');
    expect(await cell.getAttribute('class')).toMatch(/\bstate-provisioning\b/);
    expect(await cell.getAttribute('class')).not.toMatch(/\bstate-assigned\b/);
    const during = await cell.evaluate((el) => (globalThis as unknown as BrowserWindow).getComputedStyle(el).backgroundColor);
    expect(during).not.toBe(before);
    expect(during).toBe('rgb(255, 179, 0)');

    await record('n2-3', { type: 'failed', reason: 'disk /dev/nvme0n1 not found', stage: 'partition' });
    await page.waitForSelector('[data-node="n2-3"][data-state="failed"]');
    expect(await cell.evaluate((el) => (globalThis as unknown as BrowserWindow).getComputedStyle(el).backgroundColor)).toBe('rgb(229, 57, 53)');
    expect(await cell.locator('.detail').textContent()).toBe('failed: disk /dev/nvme0n1 not found');
    await page.waitForFunction(() => (globalThis as unknown as BrowserWindow).document.querySelector('[data-summary-state="failed"]')?.textContent === '1');
    expect(await page.textContent('[data-summary-state="assigned"]')).toBe(String(ALL_NODES.length - 1));

    expect(await page.evaluate(() => (globalThis as unknown as BrowserWindow).marker)).toBe('still-here');
    expect(navigations.count).toBe(0);
  });

  it('adds a cell for a machine discovered while the page is open', async () => {
    await record('52:54:00:de:ad:01', { type: 'discovered', mac: '52:54:00:de:ad:01', facts: { product: 'PowerEdge XE9680' } });
    await page.waitForSelector('#discovered [data-node="52:54:00:de:ad:01"][data-state="discovered"]');
  });

  it('writes a screenshot of the rack view', async () => {
    await record('n1-1', { type: 'provision_started' });
    await record('n1-1', { type: 'installed' });
    await record('n1-2', { type: 'provision_started' });
    await record('n1-2', { type: 'installed' });
    await record('n1-2', { type: 'configure_started' });
    await record('n1-2', { type: 'ready' });
    await page.waitForSelector('[data-node="n1-2"][data-state="ready"]');
    const file = path.join(ARTIFACTS, 'dashboard-rack-view.png');
    await page.screenshot({ path: file, fullPage: true });
  });
});

describe('node page', () => {
  const node = 'n3-2';
  const results: StateResult[] = [
    { key: 'pkg_|-nginx_|-nginx_|-installed', id: 'nginx', name: 'nginx', sls: 'web', module: 'pkg', fun: 'installed', result: true, changes: { nginx: { old: '', new: '1.22.1-9' } }, comment: 'The following packages were installed: nginx', durationMs: 4210, startedAt: 1, runNum: 0 },
    { key: 'file_|-slurm-conf_|-/etc/slurm/slurm.conf_|-managed', id: 'slurm-conf', name: '/etc/slurm/slurm.conf', sls: 'slurm.compute', module: 'file', fun: 'managed', result: true, changes: { diff: '--- /etc/slurm/slurm.conf\n+++ new\n@@ -1 +1 @@\n-ClusterName=old\n+ClusterName=e2e\n' }, comment: 'File /etc/slurm/slurm.conf updated', durationMs: 35, startedAt: 2, runNum: 1 },
    { key: 'service_|-slurmd_|-slurmd_|-running', id: 'slurmd', name: 'slurmd', sls: 'slurm.compute', module: 'service', fun: 'running', result: false, changes: {}, comment: 'Job for slurmd.service failed <img src=x onerror="window.__pwned=1">', durationMs: 820, startedAt: 3, runNum: 2 },
  ];
  const evidence = [
    { check: 'gpu.count', role: 'nvidia', expected: 8, seen: 8, pass: true, reason: '' },
    { check: 'slurmd.registered', role: 'slurm-compute', expected: 'idle', seen: 'down', pass: false, reason: 'node is DOWN in sinfo' },
  ];
  let page: Page;

  beforeAll(async () => {
    await record(node, { type: 'provision_started' });
    await record(node, { type: 'stage', stage: 'plan', detail: { image: 'debian12', disk: '/dev/nvme0n1', ip: '10.0.3.12' } });
    await record(node, { type: 'stage', stage: 'download', detail: { source: 'swarm', bytes: 2 * 1024 ** 3, size: 8 * 1024 ** 3, rate: 120 * 1024 ** 2, upload_rate: 30 * 1024 ** 2, peers: 5 } });
    const t0 = Date.now() - 60_000;
    await srv.store.createRun({ id: 'apply-1', node, kind: 'apply', result: 'running', startedAt: t0, summary: {}, details: [] });
    await srv.store.finishRun('apply-1', { result: 'failed', finishedAt: t0 + 5065, summary: { mode: 'apply', counts: { changed: 2, unchanged: 0, failed: 1, wouldChange: 0, total: 3 } }, details: results });
    await srv.store.createRun({ id: 'ready-1', node, kind: 'readiness', result: 'running', startedAt: t0 + 6000, summary: {}, details: [] });
    await srv.store.finishRun('ready-1', { result: 'failed', finishedAt: t0 + 9000, summary: { passed: 1, failed: 1 }, details: evidence });
    page = await context.newPage();
    await page.goto(`${base}/ui/nodes/${node}`);
  });
  afterAll(async () => {
    await page?.close();
  });

  it('shows inventory facts and the lifecycle events', async () => {
    expect(await page.textContent('h1.node-title')).toContain(node);
    expect(await page.textContent('section[aria-label=inventory]')).toContain('10.0.3.12');
    const events = await page.$$eval('#events tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(events.map((e) => e[2])).toEqual(['stage', 'stage', 'provision_started', 'assigned']);
    expect(events[1]![3]).toBe('plan: image=debian12 disk=/dev/nvme0n1 ip=10.0.3.12');
  });

  it('shows the download progress the installer reported', async () => {
    expect(await page.textContent('#download-text')).toContain('2.0 GiB of 8.0 GiB (25%), at 120.0 MiB/s, 5 peers, uploading 30.0 MiB/s, via swarm');
    expect(await page.getAttribute('#download-bar', 'value')).toBe('25');
  });

  it('shows the last state run with per-state results, escaped', async () => {
    const rows = await page.$$eval('#state-run table.states tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent?.trim() ?? '')));
    expect(rows.map((r) => [r[1]!.split(/\s/)[0], r[2], r[3]])).toEqual([
      ['nginx', 'pkg.installed', 'changed'],
      ['slurm-conf', 'file.managed', 'changed'],
      ['slurmd', 'service.running', 'failed'],
    ]);
    expect(rows[0]![4]).toBe('nginx: old, new');
    expect(rows[1]![4]).toContain('+ClusterName=e2e');
    expect(rows[2]![5]).toBe('Job for slurmd.service failed <img src=x onerror="window.__pwned=1">');
    expect(await page.$$('#state-run img')).toHaveLength(0);
    expect(await page.evaluate(() => (globalThis as unknown as BrowserWindow).__pwned)).toBeUndefined();
    expect(await page.textContent('#state-run .run-header')).toContain('counts: changed=2 unchanged=0 failed=1');
  });

  it('shows the readiness evidence', async () => {
    const rows = await page.$$eval('#readiness table.evidence tbody tr', (trs) => trs.map((tr) => [tr.className, ...[...tr.querySelectorAll('td')].map((td) => td.textContent)]));
    expect(rows).toEqual([
      ['pass', 'gpu.count', 'nvidia', '8', '8', 'pass', ''],
      ['fail', 'slurmd.registered', 'slurm-compute', 'idle', 'down', 'FAIL', 'node is DOWN in sinfo'],
    ]);
  });

  it('follows new events and download progress live, without a reload', async () => {
    await page.waitForFunction(() => (globalThis as unknown as BrowserWindow).rackseedLive?.open === true);
    const navigations = navigationCounter(page);
    const id = await record(node, { type: 'stage', stage: 'download', detail: { source: 'swarm', bytes: 6 * 1024 ** 3, size: 8 * 1024 ** 3, rate: 150 * 1024 ** 2, upload_rate: 60 * 1024 ** 2, peers: 9 } });
    await page.waitForSelector(`#events tbody tr[data-event-id="${id}"]`);
    await page.waitForFunction(() => (globalThis as unknown as BrowserWindow).document.querySelector('#download-text')?.textContent?.includes('(75%)'));
    expect(await page.getAttribute('#download-bar', 'value')).toBe('75');
    expect(await page.textContent('#events tbody tr:first-child')).toContain('download: 6.0 GiB of 8.0 GiB (75%)');
    expect(navigations.count).toBe(0);
  });

  it('never shows the admin token and writes a screenshot', async () => {
    expect(await page.content()).not.toContain(srv.adminToken);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-node-page.png'), fullPage: true });
  });

  it('answers an unknown node with a 404 page', async () => {
    const res = await page.goto(`${base}/ui/nodes/nope`);
    expect(res?.status()).toBe(404);
    expect(await page.textContent('main')).toContain('node "nope"');
  });
});

describe('event stream', () => {
  it('resumes after Last-Event-ID', async () => {
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const from = await record('n3-4', { type: 'provision_started' });
    const next = await record('n3-4', { type: 'stage', stage: 'partition' });
    const abort = new AbortController();
    const res = await fetch(`${base}/ui/events`, { headers: { cookie, 'last-event-id': String(from) }, signal: abort.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('event: summary')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    abort.abort();
    const messages = text.split('\n\n').filter((m) => m.includes('event: node'));
    // Only what came after the given id: the stage event, not provision_started again.
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain(`id: ${next}\n`);
    const data = JSON.parse(messages[0]!.split('\n').find((l) => l.startsWith('data: '))!.slice(6));
    expect(data).toMatchObject({ node: 'n3-4', view: { name: 'n3-4', state: 'provisioning', stateClass: 'state-provisioning', detail: 'provisioning: partition' }, event: { id: next, type: 'stage', description: 'partition' } });
  });

  it('stops polling the store when the client goes away', async () => {
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    let polls = 0;
    const counted = new Proxy(srv.store, {
      get(target, prop, receiver) {
        if (prop === 'listEvents') return (...args: Parameters<typeof target.listEvents>) => (polls++, target.listEvents(...args));
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const app = express().use('/ui', dashboardRoutes({ inventory: srv.inventory, store: counted, adminToken: srv.adminToken, serverName: 'polls', log: srv.log, pollMs: 20 }));
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const abort = new AbortController();
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/ui/events?after=0`, { headers: { cookie }, signal: abort.signal });
      expect(res.status).toBe(200);
      await expect.poll(() => polls).toBeGreaterThan(5);
      abort.abort();
      // Once the server has seen the disconnect (one in-flight poll may still finish), the count stays put.
      let settled = -1;
      await expect.poll(async () => {
        const seen = polls;
        await new Promise((r) => setTimeout(r, 200));
        const stable = seen === polls;
        if (stable) settled = polls;
        return stable;
      }).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
      expect(polls).toBe(settled);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('logout', () => {
  it('ends the session', async () => {
    const page = await context.newPage();
    await page.goto(`${base}/ui/`);
    await Promise.all([page.waitForNavigation(), page.click('form.logout button')]);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    expect(await context.cookies()).toEqual([]);
    await page.goto(`${base}/ui/nodes/n1-1`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    expect(new URL(page.url()).searchParams.get('next')).toBe('/ui/nodes/n1-1');
    await page.close();
  });
});
