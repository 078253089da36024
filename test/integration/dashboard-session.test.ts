import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * The dashboard's session cookie against a real server on loopback: Secure when a trusted reverse proxy says the
 * browser used https (http.trust_proxy), and dead after logout even when someone kept a copy.
 */
let srv: TestServer;

beforeAll(async () => {
  // The test client is the "proxy": loopback is trusted.
  srv = await startTestServer({ inventoryFixture: 'api/inventory.yaml', extraConfig: 'torrent:\n  enabled: false', httpConfig: 'trust_proxy: [loopback]' });
});
afterAll(async () => {
  await srv?.stop();
});

async function login(headers: Record<string, string> = {}): Promise<{ cookie: string; setCookie: string }> {
  const res = await fetch(`${srv.httpUrl}/ui/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin', ...headers },
    body: new URLSearchParams({ token: srv.adminToken }).toString(),
  });
  expect(res.status).toBe(303);
  const setCookie = res.headers.get('set-cookie') ?? '';
  return { cookie: setCookie.split(';')[0]!, setCookie };
}

const page = (cookie: string) => fetch(`${srv.httpUrl}/ui/`, { redirect: 'manual', headers: { cookie } });

describe('dashboard session', () => {
  it('is Secure when a trusted proxy forwarded an https request, and not on plain http', async () => {
    expect((await login({ 'x-forwarded-proto': 'https' })).setCookie).toMatch(/;\s*Secure/i);
    expect((await login()).setCookie).not.toMatch(/;\s*Secure/i);
  });

  it('a copy of the cookie no longer opens the dashboard or its live stream after logout', async () => {
    const { cookie } = await login();
    expect((await page(cookie)).status).toBe(200);
    const other = await login();
    const out = await fetch(`${srv.httpUrl}/ui/logout`, { method: 'POST', redirect: 'manual', headers: { cookie, 'sec-fetch-site': 'same-origin' } });
    expect(out.status).toBe(303);
    // Before: the browser was told to drop the cookie, and a copy kept working for its 12 hours.
    expect((await page(cookie)).status).toBe(303);
    // Nor does a respelling of it (base64url decoders ignore padding and stray characters).
    for (const variant of [`${cookie}=`, `${cookie}!`]) expect((await page(variant)).status).toBe(303);
    expect((await fetch(`${srv.httpUrl}/ui/events`, { headers: { cookie } })).status).toBe(401);
    // Another session goes on.
    expect((await page(other.cookie)).status).toBe(200);
  });
});
