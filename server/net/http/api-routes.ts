import express, { Router } from 'express';
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
    const events = await deps.store.listEvents({ node: storeId });
    res.json({ node: nodeView(node, status), events: events.slice(-50) });
  });

  api.post('/nodes', async (req, res) => {
    const body = req.body as Record<string, unknown> | undefined;
    if (!body || typeof body.name !== 'string') throw badRequest('body must be a JSON object with at least "name" and "macs"');
    const macs = Array.isArray(body.macs) ? body.macs : typeof body.mac === 'string' ? [body.mac] : [];
    if (macs.length === 0 || !macs.every((m): m is string => typeof m === 'string')) throw badRequest('"macs" must be a list of MAC addresses');
    const entry = {
      name: body.name,
      macs,
      ...(typeof body.ip === 'string' ? { ip: body.ip } : {}),
      ...(typeof body.group === 'string' ? { group: body.group } : {}),
      ...(typeof body.rack === 'string' ? { rack: body.rack } : {}),
      ...(typeof body.slot === 'number' ? { slot: body.slot } : {}),
      ...(body.bmc && typeof body.bmc === 'object' ? { bmc: body.bmc as { address: string; kind?: 'ipmi' | 'redfish' } } : {}),
    };
    const inv = await deps.inventory.addNode(entry);
    const node = inv.nodes.get(body.name);
    res.status(201).json({ node: nodeView(node, await deps.store.getNode(body.name)) });
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
    const limit = intParam(req.query.limit, 'limit', 10_000) ?? 500;
    const node = typeof req.query.node === 'string' ? req.query.node : undefined;
    const events = await deps.store.listEvents({ ...(node ? { node } : {}), ...(after !== undefined ? { afterId: after } : {}), limit });
    res.json({ events });
  });

  api.post('/inventory/reload', async (_req, res) => {
    const inv = await deps.inventory.reload();
    res.json({ nodes: inv.nodes.size, groups: inv.groups.size });
  });

  return api;
}
