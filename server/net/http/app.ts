import express, { type Express, type RequestHandler, type Router } from 'express';
import type { Logger } from '../../log.js';
import { apiRoutes, type ApiDeps } from './api-routes.js';
import { requireAdminToken } from './auth.js';
import { bootRoutes, type BootRouteDeps } from './boot-routes.js';
import { errorBody, errorHandler, notFoundHandler } from './errors.js';
import { nodeRoutes, type NodeRouteDeps } from './node-routes.js';
import { swarmRoutes, type SwarmDeps } from './swarm-routes.js';
import { fleetRoutes } from './fleet-routes.js';
import { metricsRouter } from './metrics-route.js';
import { stateRoutes } from './state-routes.js';
import { dashboardRoutes } from './dashboard/routes.js';
import type { StateService } from '../../services/state-service.js';
import type { ReadinessService } from '../../services/readiness-service.js';
import { readinessRoutes } from './readiness-routes.js';
import type { AuditService } from '../../services/audit-service.js';
import { auditRoutes } from './audit-routes.js';
import type { ConvergenceService } from '../../services/convergence.js';
import { convergeRoutes } from './converge-routes.js';
import { execRoutes, type ExecRouteDeps } from './exec-routes.js';
import { torrentRoute, type TorrentRouteDeps } from './torrent-route.js';
import { confinedToRoot } from './confined-static.js';
import type { NodeLocks } from '../../services/node-locks.js';

export interface HttpAppDeps extends ApiDeps, BootRouteDeps, NodeRouteDeps, SwarmDeps {
  /** The BitTorrent tracker's GET /announce and /scrape (absent when torrent.enabled is false). */
  trackerRoutes?: Router;
  adminToken: string;
  /** Directory served read-only under /files (installer, images); traversal is refused by express.static. */
  filesDir: string;
  /** The iPXE binaries (tftp.root), also served over HTTP for UEFI HTTP-boot clients under /ipxe/. */
  loaderDir: string;
  log: Logger;
  /** The data directory: BMC credentials, the SSH key used for reboots, the metrics token. */
  dataDir: string;
  /** tftp.enabled: /metrics exports the TFTP families only for a server that runs TFTP. */
  tftpEnabled: boolean;
  /** http.trust_proxy: reverse proxies whose X-Forwarded-* headers are believed (none by default). */
  trustProxy?: readonly string[];
  /** The nodes' sshd port (states.ssh_port): reimage's SSH reboot uses it like the state runs. Default 22. */
  sshPort?: number;
  /** State runs (apply/test); absent in tests that do not need them. */
  states?: StateService;
  /** Readiness checks; absent in tests that do not need them. */
  readiness?: ReadinessService;
  /** Fleet drift audit; absent in tests that do not need it. */
  audit?: AuditService;
  /** The per-node operation locks the services above share: `node remove` respects and holds them. */
  locks?: NodeLocks;
  /** Convergence, for an operator's POST /api/v1/converge; absent in tests that do not need it. */
  convergence?: ConvergenceService;
  /** Rewrites image torrents as served (every live server's trackers and web seeds); absent: served as stored. */
  torrentSources?: TorrentRouteDeps['torrentSources'];
  /** Real paths outside `loaderDir` its symlinks may lead to (Debian's iPXE loaders link into /boot). */
  loaderSymlinkTargets?: readonly string[];
  /** Releases a DHCP lease (`node remove`): through the full-mode lease book, which remembers leases; else the store. */
  releaseLease?: (ip: string, mac: string) => Promise<void>;
  /** Paces web-seed range requests for image tarballs while the seeder covers them (server/net/http/webseed-throttle.ts). */
  webseedThrottle?: RequestHandler;
  /**
   * How the server reaches a node over SSH outside the state runs (`rackseed exec`, Slurm for reimage --when-idle),
   * with the states' concurrency and connect timeout; absent in tests that do not need it (no POST /exec then).
   */
  nodeShell?: Omit<ExecRouteDeps, 'inventory' | 'log'>;
}

/**
 * The admin API takes each query parameter once: a repeated one (`?node=a&node=b`) arrives as a list, which the
 * routes' string checks would otherwise treat as absent (returning everything) or let past their validation.
 */
const singleQueryValues: RequestHandler = (req, res, next) => {
  const repeated = Object.entries(req.query).find(([, v]) => typeof v !== 'string');
  if (repeated) {
    res.status(400).json(errorBody('BAD_REQUEST', `query parameter "${repeated[0]}" must be given once`));
    return;
  }
  next();
};

export function createHttpApp(deps: HttpAppDeps): Express {
  const { convergence } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  // Only the proxies named: req.ip (the plan route's address check, logs) and req.secure (the cookie) follow them.
  if (deps.trustProxy && deps.trustProxy.length > 0) app.set('trust proxy', [...deps.trustProxy]);
  // On every answer, not only the dashboard's: a browser must never guess a type (an image file, a script a node
  // reported) into HTML, and must not leak the URL (a single-use plan token travels in one) to another site.
  app.use((_req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    next();
  });
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, server: deps.serverName });
  });
  app.use(bootRoutes(deps));
  app.use('/ipxe', confinedToRoot(deps.loaderDir, deps.loaderSymlinkTargets ?? []), express.static(deps.loaderDir, { dotfiles: 'deny', index: false, fallthrough: false, redirect: false }));
  if (deps.torrentSources) app.use(torrentRoute({ images: deps.images, torrentSources: deps.torrentSources }));
  // An image's files are served once the catalog lists it: a build writes its manifest last, and an old manifest that
  // still holds its hook's text and could not be rewritten is not listed (its text may hold a secret).
  app.use('/files/images/:name', (req, res, next) => {
    if (deps.images.get(req.params['name'] ?? '')) return next();
    res.status(404).type('text/plain').send('no such image in the catalog\n');
  });
  if (deps.webseedThrottle) app.use('/files', deps.webseedThrottle);
  app.use('/files', confinedToRoot(deps.filesDir), express.static(deps.filesDir, { dotfiles: 'deny', index: false, fallthrough: false, redirect: false }));
  app.use('/node/v1', nodeRoutes(deps));
  // Unauthenticated like /files: BitTorrent clients cannot send a token; the tracker only knows catalogued images.
  if (deps.trackerRoutes) app.use(deps.trackerRoutes);
  app.use('/ui', dashboardRoutes({ inventory: deps.inventory, store: deps.store, adminToken: deps.adminToken, serverName: deps.serverName, log: deps.log }));
  app.get('/', (_req, res) => res.redirect('/ui/'));
  app.use(metricsRouter({ adminToken: deps.adminToken, dataDir: deps.dataDir, store: deps.store, netbootStats: deps.netbootStats, tftpEnabled: deps.tftpEnabled, images: deps.images, ...(deps.swarm ? { swarm: deps.swarm } : {}) }));
  app.use(
    '/api/v1',
    requireAdminToken(deps.adminToken),
    singleQueryValues,
    swarmRoutes(deps),
    apiRoutes(deps),
    fleetRoutes({
      inventory: deps.inventory,
      store: deps.store,
      dataDir: deps.dataDir,
      log: deps.log,
      ...(deps.sshPort !== undefined ? { sshPort: deps.sshPort } : {}),
      ...(deps.plan ? { identity: deps.plan.identity } : {}),
      ...(deps.releaseLease ? { releaseLease: deps.releaseLease } : {}),
      ...(deps.locks ? { locks: deps.locks } : {}),
      ...(deps.nodeShell ? { transportFor: deps.nodeShell.transportFor } : {}),
      ...(convergence ? { onReimageCancelled: (nodes: string[]) => convergence.reconvergeIfConfiguredOtherwise(nodes) } : {}),
    }),
    ...(deps.states ? [stateRoutes({ inventory: deps.inventory, store: deps.store, states: deps.states, log: deps.log })] : []),
    ...(deps.readiness ? [readinessRoutes({ inventory: deps.inventory, readiness: deps.readiness, log: deps.log })] : []),
    ...(deps.audit ? [auditRoutes({ inventory: deps.inventory, audit: deps.audit, log: deps.log })] : []),
    ...(deps.convergence ? [convergeRoutes({ inventory: deps.inventory, convergence: deps.convergence, store: deps.store, log: deps.log })] : []),
    ...(deps.nodeShell ? [execRoutes({ inventory: deps.inventory, log: deps.log, ...deps.nodeShell })] : []),
  );
  app.use(notFoundHandler());
  app.use(errorHandler(deps.log));
  return app;
}
