import type { Request, RequestHandler } from 'express';
import type { CallbackTokens } from '../../auth/callback-token.js';
import { stillNamesMachine, type NodeTokens } from '../../auth/node-token.js';
import { catalogLookup, type ImageCatalog } from '../../images/catalog.js';
import { nodeLogger, type Logger } from '../../log.js';
import { IMAGE_FILES } from '../../model/image.js';
import { provisioningRefusal } from '../../protocol/ipxe/decide.js';
import { PlanError, renderPlan, renderWipePlan } from '../../protocol/plan.js';
import type { ResolvedNode } from '../../model/inventory.js';
import type { InventoryService } from '../../services/inventory-service.js';
import type { NodeIdentity } from '../../services/node-identity.js';
import type { ObservedStore } from '../../store/types.js';
import { errorBody } from './errors.js';
import { remoteOf } from './remote.js';

export interface PlanRouteDeps {
  tokens: NodeTokens;
  store: ObservedStore;
  inventory: InventoryService;
  images: ImageCatalog;
  identity: NodeIdentity;
  /** The public base URL nodes reach rackseed on, without a trailing slash. */
  baseUrl: string;
  log: Logger;
  /** Given: the plan carries the installed system's first-boot callback (URL and its long-lived token). */
  callbackTokens?: CallbackTokens;
  /**
   * The address the node's installer must ask from, when the server knows it (it hands out the addresses: full DHCP
   * mode). The token travels in a boot script anyone on the boot network can ask for by MAC; binding the plan to the
   * node's own address keeps its host key from a machine that merely knows the MAC.
   */
  addressOf?: (node: ResolvedNode, mac: string | undefined) => Promise<string | undefined>;
}

/** In full DHCP mode: the node's reservation, else the address bound to its MAC in the lease book. */
export function dhcpAddressOf(store: ObservedStore): (node: ResolvedNode, mac: string | undefined) => Promise<string | undefined> {
  return async (node, mac) => {
    if (node.ip !== undefined) return node.ip;
    for (const m of mac !== undefined ? [mac, ...node.macs] : node.macs) {
      const lease = await store.getLeaseByMac(m);
      if (lease && lease.state === 'bound') return lease.ip;
    }
    return undefined;
  };
}

/**
 * How long a wipe may report: a full wipe writes and reads back every byte (an 8 TB disk at 200 MB/s takes about 22
 * hours; disks are wiped at once, but WIPE_PARALLEL=1 takes them one after another: eight such disks about a week).
 */
export const WIPE_REPORT_TOKEN_SECONDS = 14 * 24 * 3600;

/** The single-use key a token's plan fetch spends: spent, it also shows the token came by its node's plan. */
export const planFetchKey = (node: string, nonce: string): string => `plan:${node}:${nonce}`;

function bearer(req: Request): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
}

const fileUrl = (base: string, urlPath: string, file: string): string => `${base}${urlPath}/${encodeURIComponent(file)}`;

/**
 * GET /node/v1/plan: the install plan of the node the bearer token names. It carries the node's SSH host private
 * key, so each token yields it once: the token's nonce is spent (store.useOnce, expiring with the token) when the
 * plan is handed out, and a second fetch is refused and recorded on the node (plan_refused), where an operator sees
 * it. It is served only while the node installs, and in full DHCP mode only to the node's own address.
 * Nothing is spent when the plan cannot be made (unknown image, bad layout): the reason goes back to the installer.
 */
export function planHandler(deps: PlanRouteDeps): RequestHandler {
  return async (req, res) => {
    const token = bearer(req) ?? '';
    const claims = deps.tokens.verify(token);
    if (!claims) {
      res.status(401).json(errorBody('UNAUTHORIZED', 'missing, invalid or expired node token'));
      return;
    }
    const log = nodeLogger(deps.log, { name: claims.node });
    const node = deps.inventory.inventory.nodes.get(claims.node);
    if (!node) {
      res.status(404).json(errorBody('NODE_NOT_FOUND', `node ${claims.node} is not in the inventory`));
      return;
    }
    const remote = remoteOf(req);
    /** Refuses the plan and records why on the node, where an operator sees it. */
    const refuse = async (status: number, reason: string, message: string, code: 'UNAUTHORIZED' | 'BAD_REQUEST' | 'IMAGE_NOT_FOUND' = 'UNAUTHORIZED'): Promise<void> => {
      log.warn({ remote, reason }, 'install plan refused');
      const r = await deps.store.recordEvent({ node: node.name, event: { type: 'plan_refused', reason, remote } });
      if (!r.ok) log.warn({ error: r.error }, 'could not record the refused plan fetch');
      res.status(status).json(errorBody(code, message));
    };
    /** Spends this token's one plan fetch; a second is refused and recorded. */
    const spendPlanFetch = async (): Promise<boolean> => {
      if (await deps.store.useOnce(planFetchKey(claims.node, claims.nonce), claims.expiresAt)) return true;
      await refuse(409, 'plan already fetched with this token', 'this token has already fetched its plan');
      return false;
    };
    if (!stillNamesMachine(claims, deps.inventory.inventory)) {
      // Removed and declared again for another machine since the token was issued: the old one's installer must not
      // get the new machine's host key.
      const why = `asked with a token issued to machine ${claims.mac}, which the inventory no longer declares as ${node.name}`;
      await refuse(401, why, `this token was issued to machine ${claims.mac}, which the inventory no longer declares as ${node.name}`);
      return;
    }
    const status = await deps.store.getNode(node.name);
    if (deps.addressOf && (status?.state === 'provisioning' || status?.state === 'wiping')) {
      // Fails closed: in full DHCP mode an installing node holds a reservation or a lease from this server, and a
      // lease anyone can release with a forged DHCPRELEASE must not turn the address check off.
      const expected = await deps.addressOf(node, status.mac);
      if (expected === undefined) {
        await refuse(403, `asked from ${remote}; the node has no reservation and no bound lease`, `the plan of ${node.name} is served only to its own address, and it holds none`);
        return;
      }
      if (remote !== expected) {
        await refuse(403, `asked from ${remote}, not the node's address ${expected}`, `the plan of ${node.name} is served only to its own address`);
        return;
      }
    }
    if (status?.state === 'wiping' && status.wipeRequested !== undefined) {
      // Spent like an install plan's token: a boot script replayed later must not start a second wipe's reports.
      if (!(await spendPlanFetch())) return;
      // The wipe's own report token, spent for plans at once: it reports, it fetches nothing.
      const reportToken = deps.tokens.issue(node.name, claims.mac ?? status.mac ?? node.macs[0] ?? '', WIPE_REPORT_TOKEN_SECONDS);
      const reportClaims = deps.tokens.verify(reportToken)!;
      await deps.store.useOnce(planFetchKey(node.name, reportClaims.nonce), reportClaims.expiresAt);
      log.info({ mode: status.wipeRequested, remote }, 'wipe plan served');
      res.status(200).type('text/plain').set('cache-control', 'no-store').send(renderWipePlan({ node: { name: node.name }, mode: status.wipeRequested, urls: { report: `${deps.baseUrl}/node/v1/report` }, reportToken }));
      return;
    }
    // The boot script is not handed out for these (decideScript), so they arrive only when the image or the layout
    // went away between the boot script and this request.
    const refusal = provisioningRefusal(node, catalogLookup(deps.images));
    const image = node.image ? deps.images.get(node.image) : undefined;
    if (refusal || !image || !node.disk) {
      // Past the refusal check, only a catalog changing under this request leaves no image (the disk was checked).
      const why = refusal?.reason ?? `image ${node.image ?? '(none)'} is not in the catalog`;
      await refuse(409, why, why, refusal?.code ?? 'IMAGE_NOT_FOUND');
      return;
    }
    // Only an installing node has a use for its plan. Afterwards a request can only be a token replayed from a boot
    // script (plain HTTP) that the node did not use, and the plan would still hand over its host key.
    if (status?.state !== 'provisioning') {
      await refuse(409, `asked while the node is ${status?.state ?? 'unknown to the store'}, not installing`, `${node.name} is not installing: its plan is served only while it installs`);
      return;
    }
    const { manifest } = image;
    const [hostKey, serverKey] = await Promise.all([deps.identity.hostKey(node.name, node.ip), deps.identity.serverPublicKey()]);
    let plan: string;
    try {
      plan = renderPlan({
        node: { name: node.name, mac: status?.mac ?? node.macs[0] ?? '', installedBoot: node.installedBoot, kernelArgs: node.kernelArgs, disk: node.disk },
        image: { name: manifest.name, sha256: manifest.artefacts.rootfs.sha256, size: manifest.artefacts.rootfs.size },
        urls: {
          torrent: fileUrl(deps.baseUrl, image.urlPath, manifest.torrent.file || IMAGE_FILES.torrent),
          http: fileUrl(deps.baseUrl, image.urlPath, manifest.artefacts.rootfs.file || IMAGE_FILES.rootfs),
          report: `${deps.baseUrl}/node/v1/report`,
        },
        keys: { hostPrivate: hostKey.privateKey, hostPublic: hostKey.publicKey, authorized: [serverKey] },
        ...(deps.callbackTokens ? { callback: { bootedUrl: `${deps.baseUrl}/node/v1/booted`, token: deps.callbackTokens.issue(node.name, 'booted') } } : {}),
      });
    } catch (e) {
      if (!(e instanceof PlanError)) throw e;
      // Recorded on the node: the installer can only say it got no plan, and every node of the group fails alike.
      await refuse(409, e.message, e.message, 'BAD_REQUEST');
      return;
    }

    if (!(await spendPlanFetch())) return;
    log.info({ image: manifest.name }, 'install plan served');
    res.status(200).type('text/plain').set('cache-control', 'no-store').send(plan);
  };
}
