import express, { Router, type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import { tokenMatches } from '../../../auth/admin-token.js';
import type { Logger } from '../../../log.js';
import type { InventoryService } from '../../../services/inventory-service.js';
import type { ObservedStore } from '../../../store/types.js';
import { clientErrorOf, errorBody, httpStatusOf } from '../errors.js';
import { remoteOf } from '../remote.js';
import { latestEventId } from './event-cursor.js';
import { liveEvents } from './live.js';
import { fleetPage, nodePage } from './pages.js';
import { RevokedSessions, SESSION_COOKIE, SESSION_SECONDS, cookieValue, issueSession, sessionKey, sessionValid } from './session.js';
import { UI_STATIC_DIR, createPageRenderer } from './templates.js';

export interface DashboardDeps {
  inventory: InventoryService;
  store: ObservedStore;
  adminToken: string;
  serverName: string;
  log: Logger;
  /** Store poll interval of the live stream in milliseconds (default 500). */
  pollMs?: number;
}

// Scripts and styles only from our own static files: a value that slipped past escaping still could not run.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const securityHeaders: RequestHandler = (_req, res, next) => {
  res.set({ 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' });
  next();
};

/**
 * The POSTs (login, logout) must come from our own pages: browsers send Origin/Sec-Fetch-Site on form posts.
 * Sec-Fetch-Site, when present, decides alone: the browser computed it against the page's real origin, while Host
 * may have been rewritten by a reverse proxy (nginx's default proxy_set_header Host $proxy_host), which would make
 * every login look cross-site. Origin against Host is the fallback for browsers without it.
 */
const sameOrigin: RequestHandler = (req, res, next) => {
  const site = req.get('sec-fetch-site');
  const origin = req.get('origin');
  let foreign = site !== undefined && site !== 'same-origin' && site !== 'none';
  if (site === undefined && origin !== undefined && origin !== 'null') {
    try {
      foreign = new URL(origin).host !== req.get('host');
    } catch {
      foreign = true;
    }
  }
  if (foreign) {
    res.status(403).type('text/plain').send('cross-site request refused');
    return;
  }
  next();
};

/** Only paths of this dashboard may be a post-login destination (no open redirect). */
function safeNext(base: string, value: unknown): string {
  return typeof value === 'string' && value.startsWith(`${base}/`) && /^[A-Za-z0-9/._%:-]*$/.test(value) && !value.includes('//') ? value : `${base}/`;
}

/**
 * The dashboard: login with the admin token, the fleet summary and rack view, a page per node, all updated live
 * over server-sent events. Mounted at /ui; every link is built from req.baseUrl, so the mount point can move.
 */
export function dashboardRoutes(deps: DashboardDeps): Router {
  const router = Router();
  const render = createPageRenderer();
  const key = sessionKey(deps.adminToken);
  const revoked = new RevokedSessions();
  const hasSession = (req: Request) => {
    const value = cookieValue(req.get('cookie'), SESSION_COOKIE);
    return sessionValid(key, value) && !revoked.has(value);
  };
  const page = (res: Response, name: string, context: Record<string, unknown>, status = 200) => {
    res.status(status).set('cache-control', 'no-store').type('html').send(render(name, { serverName: deps.serverName, base: res.req.baseUrl, ...context }));
  };

  router.use(securityHeaders);
  router.use('/static', express.static(UI_STATIC_DIR, { dotfiles: 'deny', index: false, fallthrough: false, redirect: false }));

  router.get('/login', (req, res) => {
    page(res, 'login', { title: 'Log in', next: safeNext(req.baseUrl, req.query.next) });
  });

  router.post('/login', sameOrigin, express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(req.baseUrl, body.next);
    if (typeof body.token !== 'string' || !tokenMatches(body.token.trim(), deps.adminToken)) {
      deps.log.warn({ ip: remoteOf(req) }, 'dashboard login refused: wrong admin token');
      page(res, 'login', { title: 'Log in', next, error: 'That is not the admin token.' }, 401);
      return;
    }
    res.cookie(SESSION_COOKIE, issueSession(key), { httpOnly: true, sameSite: 'strict', secure: req.secure, path: req.baseUrl || '/', maxAge: SESSION_SECONDS * 1000 });
    res.redirect(303, next);
  });

  router.post('/logout', sameOrigin, (req, res) => {
    const value = cookieValue(req.get('cookie'), SESSION_COOKIE);
    if (sessionValid(key, value)) revoked.revoke(value);
    res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', secure: req.secure, path: req.baseUrl || '/' });
    res.redirect(303, `${req.baseUrl}/login`);
  });

  router.get('/events', (req, res, next) => {
    if (hasSession(req)) return next();
    res.status(401).json(errorBody('UNAUTHORIZED', 'log in to the dashboard first'));
  }, liveEvents({ ...deps, stillAuthorised: hasSession }));

  // Everything below is a page: without a session, go to the login form and come back afterwards.
  router.use((req, res, next) => {
    if (hasSession(req)) return next();
    res.redirect(303, `${req.baseUrl}/login?next=${encodeURIComponent(req.baseUrl + req.path)}`);
  });

  router.get('/', async (_req, res) => {
    // The cursor is taken before the page's data: an event in between is sent again, never missed.
    const after = await latestEventId(deps.store);
    page(res, 'fleet', { title: 'Fleet', live: true, after, ...(await fleetPage(deps)) });
  });

  router.get('/nodes/:name', async (req, res) => {
    const after = await latestEventId(deps.store);
    const data = await nodePage(deps, req.params.name);
    if (!data) {
      page(res, 'not-found', { title: 'Not found', what: `node "${req.params.name}"` }, 404);
      return;
    }
    page(res, 'node', { title: data.view.name, live: true, after, nodeName: data.view.name, ...data });
  });

  router.use((req, res) => {
    page(res, 'not-found', { title: 'Not found', what: req.path }, 404);
  });

  const htmlErrors: ErrorRequestHandler = (err, req, res, _next) => {
    // express.static (missing file) and the body parser (too large) report client errors with a status of their own.
    const status = httpStatusOf(err);
    if (status >= 500) deps.log.error({ err, path: req.path }, 'dashboard page failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    const message = status >= 500 ? 'internal error (see the server log)' : `${status} ${clientErrorOf(err, req, status).message}`;
    res.status(status).type('text/plain').send(message);
  };
  router.use(htmlErrors);
  return router;
}
