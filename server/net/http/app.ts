import express, { type Express } from 'express';
import type { Logger } from '../../log.js';
import { apiRoutes, type ApiDeps } from './api-routes.js';
import { requireAdminToken } from './auth.js';
import { bootRoutes, type BootRouteDeps } from './boot-routes.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { nodeRoutes, type NodeRouteDeps } from './node-routes.js';

export interface HttpAppDeps extends ApiDeps, BootRouteDeps, NodeRouteDeps {
  adminToken: string;
  /** Directory served read-only under /files (installer, images); traversal is refused by express.static. */
  filesDir: string;
  /** The iPXE binaries (tftp.root), also served over HTTP for UEFI HTTP-boot clients under /ipxe/. */
  loaderDir: string;
  log: Logger;
}

export function createHttpApp(deps: HttpAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, server: deps.serverName });
  });
  app.use(bootRoutes(deps));
  app.use('/ipxe', express.static(deps.loaderDir, { dotfiles: 'deny', index: false, fallthrough: false, redirect: false }));
  app.use('/files', express.static(deps.filesDir, { dotfiles: 'deny', index: false, fallthrough: false, redirect: false }));
  app.use('/node/v1', nodeRoutes(deps));
  app.use('/api/v1', requireAdminToken(deps.adminToken), apiRoutes(deps));
  app.use(notFoundHandler());
  app.use(errorHandler(deps.log));
  return app;
}
