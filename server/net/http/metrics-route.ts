import path from 'node:path';
import { Router, type RequestHandler } from 'express';
import { Registry } from 'prom-client';
import { tokenMatches } from '../../auth/admin-token.js';
import { ensureSecretFile, readSecretFile } from '../../auth/secret-file.js';
import { runtimeRegistry } from '../../metrics/runtime-metrics.js';
import { registerScrapeMetrics, type ScrapeSources } from '../../metrics/scrape-metrics.js';
import { errorBody } from './errors.js';

export const METRICS_TOKEN_FILE = 'metrics-token';

export interface MetricsDeps extends ScrapeSources {
  adminToken: string;
  /** Holds metrics-token, the scrape-only bearer token (made with mode 0600 on first start). */
  dataDir: string;
}

/**
 * /metrics takes a bearer token like the admin API, because rackseed is secure by default: node names, states and
 * image names are inventory data. Prometheus gets its own token, <dataDir>/metrics-token, which can scrape and do
 * nothing else (`authorization: { credentials_file: ... }` in the scrape config); the admin token works too.
 * The file is read on every scrape, so replacing it rotates the token without a restart; a value shorter than
 * MIN_SECRET_LENGTH is not accepted (and stops the server at its next start).
 */
function requireMetricsToken(adminToken: string, tokenFile: string): RequestHandler {
  return (req, res, next) => {
    const match = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
    // The same length rule as at start, so a rotation to a short token fails now rather than at the next restart.
    const metricsToken = readSecretFile(tokenFile);
    const presented = match?.[1];
    if (presented && (tokenMatches(presented, adminToken) || (metricsToken !== undefined && tokenMatches(presented, metricsToken)))) return next();
    res.set('WWW-Authenticate', 'Bearer realm="rackseed metrics"');
    res.status(401).json(errorBody('UNAUTHORIZED', presented ? 'invalid token' : `missing token (Authorization: Bearer <token from ${METRICS_TOKEN_FILE}>)`));
  };
}

/** GET /metrics in the Prometheus text format, from a dedicated registry (never prom-client's global one). */
export function metricsRouter(deps: MetricsDeps): Router {
  const tokenFile = ensureSecretFile(deps.dataDir, METRICS_TOKEN_FILE).file;
  const scrape = new Registry();
  registerScrapeMetrics(scrape, deps);
  const registry = Registry.merge([runtimeRegistry, scrape]);
  const r = Router();
  r.get('/metrics', requireMetricsToken(deps.adminToken, tokenFile), async (_req, res) => {
    const text = await registry.metrics();
    res.set('content-type', registry.contentType).send(text);
  });
  return r;
}

export function metricsTokenPath(dataDir: string): string {
  return path.join(dataDir, METRICS_TOKEN_FILE);
}
