import { Router, type Request } from 'express';
import { parseMac } from '../../model/mac.js';
import type { Facts } from '../../model/lifecycle.js';
import { decideScript, type BootSettings, type MachineFacts } from '../../protocol/ipxe/decide.js';
import { catalogLookup, type ImageCatalog } from '../../images/catalog.js';
import type { IpxeRenderer } from '../../protocol/ipxe/render.js';
import type { NodeTokens } from '../../auth/node-token.js';
import { findNodeByMac } from '../../inventory/index.js';
import type { InventoryService } from '../../services/inventory-service.js';
import type { ObservedStore } from '../../store/types.js';
import { nodeLogger, type Logger } from '../../log.js';
import { oneLineFromNode } from '../../util/printable.js';

const FACT_KEYS = ['uuid', 'serial', 'manufacturer', 'product', 'platform', 'buildarch'] as const;
const MAX_FACT_LENGTH = 128;

export interface BootRouteDeps {
  inventory: InventoryService;
  tokens: NodeTokens;
  tokenSeconds: number;
  store: ObservedStore;
  renderer: IpxeRenderer;
  settings: BootSettings;
  images: ImageCatalog;
  log: Logger;
  /**
   * Why the installer cannot boot (its kernel or initrd is not in the data directory), or undefined. Checked before a
   * provisioning script is handed out: a node sent to a missing installer looped through failed boots silently.
   */
  installerMissing?: () => string | undefined;
}

/** SMBIOS values are whatever the vendor burned in: keep them bounded and printable. */
function factsFrom(req: Request, mac: string): MachineFacts {
  const facts: MachineFacts = { mac };
  for (const key of FACT_KEYS) {
    const raw = req.query[key];
    if (typeof raw !== 'string') continue;
    // C0 and C1 controls and lone surrogates, as for every text a node sends (util/printable.ts).
    const value = oneLineFromNode(raw, MAX_FACT_LENGTH).trim();
    if (value) facts[key] = value;
  }
  return facts;
}

function storedFacts(f: MachineFacts): Facts {
  const { mac: _mac, ...rest } = f;
  return { ...rest };
}

/** Unauthenticated: iPXE cannot present a token. These routes hand out boot scripts only, never secrets. */
export function bootRoutes(deps: BootRouteDeps): Router {
  const router = Router();

  router.get('/boot.ipxe', (_req, res) => {
    res.type('text/plain').set('cache-control', 'no-store').send(deps.renderer.render('entry', { base_url: deps.settings.baseUrl, machine_url: `${deps.settings.baseUrl}/ipxe/machine` }));
  });

  // Express answers HEAD with the GET handler, which records the machine, starts provisioning and issues a token: a
  // link checker or `curl -I` must not do that.
  router.head('/ipxe/machine', (_req, res) => {
    res.status(405).set('allow', 'GET').end();
  });

  router.get('/ipxe/machine', async (req, res) => {
    const mac = typeof req.query.mac === 'string' ? parseMac(req.query.mac) : undefined;
    if (!mac) {
      res.status(400).type('text/plain').send('#!ipxe\necho rackseed: request without a valid mac parameter\nexit\n');
      return;
    }
    const facts = factsFrom(req, mac);
    const node = findNodeByMac(deps.inventory.inventory, mac);
    const log = nodeLogger(deps.log, { mac, ...(node ? { name: node.name } : {}) });
    log.debug({ url: req.originalUrl }, 'machine script requested');
    const now = Date.now();

    if (!node) {
      const existing = await deps.store.getNode(mac);
      if (!existing) {
        await deps.store.recordEvent({ node: mac, event: { type: 'discovered', mac, facts: storedFacts(facts) }, at: now });
        log.info({ facts: storedFacts(facts) }, 'unknown machine discovered');
      }
      await deps.store.touchNode(mac, { mac, facts: storedFacts(facts), seenAt: now });
      res.type('text/plain').set('cache-control', 'no-store').send(deps.renderer.render('unknown', { mac, product: facts.product ?? 'unknown product', serial: facts.serial ?? 'unknown' }));
      return;
    }

    await deps.store.touchNode(node.name, { mac, facts: storedFacts(facts), seenAt: now });
    const status = await deps.store.getNode(node.name);
    const catalog = catalogLookup(deps.images);
    const plan = decideScript({ facts, node, status, settings: deps.settings, token: deps.tokens.issue(node.name, mac, deps.tokenSeconds), catalog, ...(deps.installerMissing ? { installerProblem: deps.installerMissing } : {}) });
    // decideScript only answers "unknown" when there is no node, which was handled above.
    if (plan.kind === 'unknown') throw new Error('unreachable: a known node was planned as unknown');
    let script: string;
    try {
      script = deps.renderer.render(plan.kind, plan.context);
    } catch (e) {
      // Before anything is recorded: a script that cannot be made must not leave the node "provisioning". The machine
      // is told why and goes on to its next boot device, as with any other refusal.
      log.error({ err: (e as Error).message, plan: plan.kind }, 'boot script could not be rendered');
      const reason = `its ${plan.kind} boot script could not be made (the server log says why)`;
      res.type('text/plain').set('cache-control', 'no-store').send(deps.renderer.render('unavailable', { node: node.name, reason }));
      return;
    }
    if (plan.kind === 'provision' || plan.kind === 'wipe') {
      const type = plan.kind === 'wipe' ? 'wipe_started' : 'provision_started';
      const r = await deps.store.recordEvent({ node: node.name, event: { type }, at: now });
      if (!r.ok) log.warn({ error: r.error }, `could not record ${type}`);
    }
    const why = plan.kind === 'unavailable' ? { reason: plan.context.reason } : {};
    log[plan.kind === 'unavailable' ? 'warn' : 'info']({ plan: plan.kind, state: status?.state ?? 'none', ...why }, 'boot script served');
    res.type('text/plain').set('cache-control', 'no-store').send(script);
  });

  return router;
}
