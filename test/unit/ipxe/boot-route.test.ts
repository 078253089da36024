import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeTokens } from '../../../server/auth/node-token.js';
import type { ImageCatalog } from '../../../server/images/catalog.js';
import { parseInventory } from '../../../server/inventory/parse.js';
import { createLogger } from '../../../server/log.js';
import { bootRoutes } from '../../../server/net/http/boot-routes.js';
import type { IpxeRenderer } from '../../../server/protocol/ipxe/render.js';
import type { InventoryService } from '../../../server/services/inventory-service.js';
import { SqliteStore } from '../../../server/store/index.js';
import { projectIpxeRenderer } from '../../support/ipxe.js';

/**
 * The boot route around the pure decision: what it records, and what a machine gets when a script cannot be made.
 * The renderer that throws is failure injection: the inventory refuses the values that would make a real one throw.
 */
const INVENTORY = `cluster: { name: t }
groups:
  head:
    image: debian12
    disk: { device: /dev/sda, partitions: [{ mount: /, size: rest, fs: ext4 }] }
  broken:
    image: debian12
    disk: { device: /dev/sda, partitions: [{ mount: /, size: rest, fs: ext4 }] }
nodes:
  - { name: head01, mac: '52:54:00:00:00:01', group: head }
  - { name: head02, mac: '52:54:00:00:00:02', group: broken }
  - { name: head03, mac: '52:54:00:00:00:03', group: head }
`;
/** What the server's check of the data directory says about the installer (undefined: it is there). */
let installerMissing: string | undefined;
/** How often the route asked (the server's check logs a warning each time it finds the installer missing). */
let installerChecks = 0;

let dir: string;
let store: SqliteStore;
let server: Server;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'rackseed-boot-route-'));
  store = await SqliteStore.open(path.join(dir, 'state.db'));
  const inventory = parseInventory(INVENTORY, 'inventory.yaml');
  for (const name of ['head01', 'head02', 'head03']) await store.recordEvent({ node: name, event: { type: 'assigned', group: inventory.nodes.get(name)!.group } });
  const real = projectIpxeRenderer();
  const renderer: IpxeRenderer = {
    render: (name, context) => {
      if (name === 'provision' && context.group === 'broken') throw new Error('injected: template failure');
      return real.render(name, context);
    },
  };
  const images = { get: (name: string) => (name === 'debian12' ? { manifest: { artefacts: { rootfs: { file: 'rootfs.tar.zst', sha256: 'a'.repeat(64), size: 1 } } } } : undefined) } as unknown as ImageCatalog;
  const app = express();
  app.use(
    bootRoutes({
      inventory: { inventory } as InventoryService,
      tokens: new NodeTokens('k'.repeat(32)),
      tokenSeconds: 600,
      store,
      renderer,
      settings: { baseUrl: 'http://10.0.0.1:8080', provisionKernel: 'installer/vmlinuz', provisionInitrd: 'installer/initrd.img' },
      images,
      log: createLogger('silent'),
      installerMissing: () => {
        installerChecks += 1;
        return installerMissing;
      },
    }),
  );
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /ipxe/machine', () => {
  it('a script that cannot be rendered: the machine is told why and goes on, and the node is not marked provisioning', async () => {
    const res = await fetch(`${base}/ipxe/machine?mac=52-54-00-00-00-02`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^#!ipxe\n/);
    expect(text).toContain('echo rackseed: head02 cannot be provisioned: its provision boot script could not be made (the server log says why)');
    expect(text.trimEnd().split('\n').slice(-2)).toEqual(['set rackseed_next_device 1', 'exit 1']);
    expect((await store.getNode('head02'))?.state).toBe('assigned');
  });

  it('a script that renders is recorded as provisioning', async () => {
    const text = await (await fetch(`${base}/ipxe/machine?mac=52-54-00-00-00-01`)).text();
    expect(text).toContain('rackseed.node=head01');
    expect((await store.getNode('head01'))?.state).toBe('provisioning');
  });

  it('without the installer built, a node is told why and stays assigned (it looped through failed boots before); once built it provisions', async () => {
    installerMissing = 'the installer is not built (rackseed installer build)';
    try {
      const text = await (await fetch(`${base}/ipxe/machine?mac=52-54-00-00-00-03`)).text();
      expect(text).toContain('echo rackseed: head03 cannot be provisioned: the installer is not built (rackseed installer build)');
      expect(text).not.toContain('installer/vmlinuz initrd=');
      expect((await store.getNode('head03'))?.state).toBe('assigned');
    } finally {
      installerMissing = undefined;
    }
    expect(await (await fetch(`${base}/ipxe/machine?mac=52-54-00-00-00-03`)).text()).toContain('rackseed.node=head03');
    expect((await store.getNode('head03'))?.state).toBe('provisioning');
    // Installed, it boots its disk: the installer is not asked about (nor warned about in the log).
    await store.recordEvent({ node: 'head03', event: { type: 'installed' } });
    const checks = installerChecks;
    installerMissing = 'the installer is not built (rackseed installer build)';
    try {
      expect(await (await fetch(`${base}/ipxe/machine?mac=52-54-00-00-00-03`)).text()).not.toContain('cannot be provisioned');
    } finally {
      installerMissing = undefined;
    }
    expect(installerChecks).toBe(checks);
  });

  it('HEAD is a 405 that records nothing: no discovered machine, no provisioning', async () => {
    await store.recordEvent({ node: 'head01', event: { type: 'installed' } });
    await store.recordEvent({ node: 'head01', event: { type: 'reimage_requested' } });
    for (const mac of ['52-54-00-00-00-01', '52-54-00-00-00-99']) {
      const res = await fetch(`${base}/ipxe/machine?mac=${mac}`, { method: 'HEAD' });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET');
    }
    expect(await store.getNode('52:54:00:00:00:99')).toBeUndefined();
    expect(await store.getNode('head01')).toMatchObject({ state: 'installed', reimageRequested: true });
  });
});
