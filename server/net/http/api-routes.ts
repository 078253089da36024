import express, { Router } from 'express';
import { z } from 'zod';
import { RackseedError } from '../../model/errors.js';
import { parseMac } from '../../model/mac.js';
import { findNodeByMac } from '../../inventory/index.js';
import type { InventoryService } from '../../services/inventory-service.js';
import { fleetStatus, groupView, listNodeViews, nodeView } from '../../services/node-view.js';
import type { ObservedStore } from '../../store/types.js';
import { badRequest } from './errors.js';
import type { ImageCatalog } from '../../images/catalog.js';
import type { ImageRecord } from '../../model/image.js';
import type { DhcpStats } from '../../dhcp/stats.js';
import type { TftpStats } from '../tftp.js';

export interface ApiDeps {
  serverName: string;
  images: ImageCatalog;
  /** Live DHCP and TFTP counters (absent for a listener that is off). */
  netbootStats: () => { dhcp?: DhcpStats; tftp?: TftpStats };
  inventory: InventoryService;
  store: ObservedStore;
}

function intParam(value: unknown, name: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n > max) throw badRequest(`query parameter "${name}" must be a whole number up to ${max}`);
  return n;
}

/** POST /nodes: the fields of `rackseed node add`. A wrong type is refused, never silently dropped. */
const newNodeBody = z
  .object({
    name: z.string(),
    mac: z.string().optional(),
    macs: z.array(z.string()).min(1).optional(),
    ip: z.string().optional(),
    group: z.string().optional(),
    rack: z.string().optional(),
    slot: z.number().int().nonnegative().optional(),
    bmc: z
      .object({ address: z.string(), kind: z.enum(['ipmi', 'redfish']).optional(), boot_mode: z.enum(['uefi', 'legacy']).optional() })
      .strict()
      .optional(),
  })
  .strict();

function parseNewNode(body: unknown) {
  const parsed = newNodeBody.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? `"${issue.path.join('.')}": ` : '';
    throw badRequest(`${where}${issue.message} (a node needs "name" and "macs"; optional: ip, group, rack, slot, bmc {address, kind, boot_mode})`);
  }
  const b = parsed.data;
  const macs = b.macs ?? (b.mac !== undefined ? [b.mac] : undefined);
  if (!macs || (b.mac !== undefined && b.macs !== undefined)) throw badRequest('give the MAC addresses as "macs" (a list) or one as "mac"');
  return {
    name: b.name,
    macs,
    ...(b.ip !== undefined ? { ip: b.ip } : {}),
    ...(b.group !== undefined ? { group: b.group } : {}),
    ...(b.rack !== undefined ? { rack: b.rack } : {}),
    ...(b.slot !== undefined ? { slot: b.slot } : {}),
    ...(b.bmc ? { bmc: { address: b.bmc.address, ...(b.bmc.kind ? { kind: b.bmc.kind } : {}), ...(b.bmc.boot_mode ? { bootMode: b.bmc.boot_mode } : {}) } } : {}),
  };
}

/** The admin API (JSON). Mounted behind the bearer-token guard. */
export function apiRoutes(deps: ApiDeps): Router {
  const api = Router();
  api.use(express.json({ limit: '1mb' }));

  api.get('/status', async (_req, res) => {
    const views = listNodeViews(deps.inventory.inventory, await deps.store.listNodes());
    res.json(fleetStatus(deps.serverName, views));
  });

  api.get('/netboot/stats', (_req, res) => {
    res.json(deps.netbootStats());
  });

  api.get('/nodes', async (_req, res) => {
    res.json({ nodes: listNodeViews(deps.inventory.inventory, await deps.store.listNodes()) });
  });

  api.get('/nodes/:id', async (req, res) => {
    const inv = deps.inventory.inventory;
    const id = req.params.id;
    const mac = parseMac(id);
    const node = inv.nodes.get(id) ?? (mac ? findNodeByMac(inv, mac) : undefined);
    const storeId = node?.name ?? mac ?? id;
    const status = await deps.store.getNode(storeId);
    if (!node && !status) throw new RackseedError('NODE_NOT_FOUND', `no node or discovered machine "${id}"`);
    const events = await deps.store.listEvents({ node: storeId, last: 50 });
    res.json({ node: nodeView(node, status), events });
  });

  api.post('/nodes', async (req, res) => {
    const entry = parseNewNode(req.body);
    const inv = await deps.inventory.addNode(entry);
    const node = inv.nodes.get(entry.name);
    res.status(201).json({ node: nodeView(node, await deps.store.getNode(entry.name)) });
  });

  api.post('/nodes/import', express.text({ type: ['text/csv', 'text/plain'], limit: '10mb' }), async (req, res) => {
    if (typeof req.body !== 'string' || !req.body.trim()) throw badRequest('send the CSV as the request body with Content-Type: text/csv');
    const name = typeof req.query.name === 'string' ? req.query.name : 'import.csv';
    res.json(await deps.inventory.importCsv(req.body, name));
  });

  api.get('/groups', (_req, res) => {
    const inv = deps.inventory.inventory;
    res.json({ groups: [...inv.groups.values()].map((g) => groupView(g, inv)) });
  });

  api.get('/groups/:name', (req, res) => {
    const inv = deps.inventory.inventory;
    const group = inv.groups.get(req.params.name);
    if (!group) throw new RackseedError('GROUP_NOT_FOUND', `no group "${req.params.name}"`);
    res.json({ group: groupView(group, inv) });
  });

  const imageView = (r: ImageRecord) => ({ ...r.manifest, urlPath: r.urlPath, usedBy: [...deps.inventory.inventory.groups.values()].filter((g) => g.image === r.manifest.name).map((g) => g.name) });

  api.get('/images', (_req, res) => {
    res.json({ images: deps.images.list().map(imageView) });
  });

  api.get('/images/:name', (req, res) => {
    const image = deps.images.get(req.params.name);
    if (!image) throw new RackseedError('NOT_FOUND', `no image "${req.params.name}"`);
    res.json({ image: imageView(image) });
  });

  /** Called by `rackseed image build|import|remove` so a running server notices at once. */
  api.post('/images/rescan', (_req, res) => {
    res.json({ images: deps.images.rescan().map((r) => r.manifest.name) });
  });

  api.get('/events', async (req, res) => {
    const after = intParam(req.query.after, 'after', Number.MAX_SAFE_INTEGER);
    const limitParam = intParam(req.query.limit, 'limit', 10_000);
    // The newest `last` events (oldest first), where a tail starts: `limit` counts from the oldest.
    const last = intParam(req.query.last, 'last', 10_000);
    if (last !== undefined && limitParam !== undefined) throw badRequest('give "limit" or "last", not both');
    const node = typeof req.query.node === 'string' ? req.query.node : undefined;
    const window = last !== undefined ? { last } : { limit: limitParam ?? 500 };
    const events = await deps.store.listEvents({ ...(node ? { node } : {}), ...(after !== undefined ? { afterId: after } : {}), ...window });
    res.json({ events });
  });

  api.post('/inventory/reload', async (_req, res) => {
    const inv = await deps.inventory.reload();
    res.json({ nodes: inv.nodes.size, groups: inv.groups.size });
  });

  return api;
}
