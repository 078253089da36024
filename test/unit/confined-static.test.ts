import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confinedToRoot } from '../../server/net/http/confined-static.js';

let dir: string;
let root: string;
let server: Server;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rackseed-confined-'));
  root = path.join(dir, 'tftp');
  const app = express();
  app.use('/ipxe', confinedToRoot(root), express.static(root));
  app.use((_req, res) => void res.status(404).json({ error: { code: 'NOT_FOUND' } }));
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ipxe`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

describe('confinedToRoot', () => {
  it('answers 404 while the root is missing, and serves it once it exists (no restart)', async () => {
    expect((await fetch(`${base}/ipxe.efi`)).status).toBe(404);
    mkdirSync(root);
    writeFileSync(path.join(root, 'ipxe.efi'), 'EFI');
    const r = await fetch(`${base}/ipxe.efi`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('EFI');
  });

  it('refuses a symbolic link that leads out of the root', async () => {
    writeFileSync(path.join(dir, 'secret'), 'token');
    symlinkSync(path.join(dir, 'secret'), path.join(root, 'escape'));
    expect((await fetch(`${base}/escape`)).status).toBe(404);
  });
});
