import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';
import type { ResolvedNode } from '../../server/model/inventory.js';
import { auditRoutes } from '../../server/net/http/audit-routes.js';
import { errorHandler } from '../../server/net/http/errors.js';
import type { AuditService } from '../../server/services/audit-service.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { workdirWithStore } from '../support/workdir.js';

const INVENTORY = 'cluster: { name: demo }\ngroups:\n  g: { roles: [base] }\nnodes:\n  - { name: a01, mac: "52:54:00:00:09:01", group: g }\n  - { name: a02, mac: "52:54:00:00:09:02", group: g }\n';

/**
 * POST /api/v1/audit reads "no targets" as the whole fleet: a body that is not a JSON object (curl --data without a
 * JSON content type, a bare list) must be refused, not read as no targets. The audit service here only records which
 * nodes it was asked for (what the route decided is the subject).
 */
describe('POST /audit: what the body selects', () => {
  let dir: string;
  let server: Server;
  let base: string;
  let audited: string[][];
  let close: () => Promise<void>;

  beforeEach(async () => {
    const made = await workdirWithStore('rackseed-audit-route-', { 'inventory.yaml': INVENTORY });
    dir = made.dir;
    close = () => made.store.close();
    const log = createLogger('silent');
    audited = [];
    const audit = { audit: async (nodes: readonly ResolvedNode[]) => (audited.push(nodes.map((n) => n.name)), []) } as unknown as AuditService;
    const app = express();
    app.use(auditRoutes({ inventory: new InventoryService(join(dir, 'inventory.yaml'), log), audit, log }));
    app.use(errorHandler(log));
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await close();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (body: string, contentType?: string) => fetch(`${base}/audit`, { method: 'POST', body, headers: contentType ? { 'content-type': contentType } : {} });

  it('refuses a body that is not a JSON object, and audits nothing', async () => {
    for (const [body, type] of [['{"targets":["a01"]}', 'application/x-www-form-urlencoded'], ['{"targets":["a01"]}', 'text/plain'], ['["a01"]', 'application/json'], ['', undefined]] as const) {
      const res = await post(body, type);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain('send a JSON object');
    }
    expect(audited).toEqual([]);
  });

  it('{} audits every node, and targets select', async () => {
    expect((await post('{}', 'application/json')).status).toBe(200);
    expect((await post('{"targets":["a02"]}', 'application/json')).status).toBe(200);
    expect(audited).toEqual([['a01', 'a02'], ['a02']]);
  });
});
