import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { RackseedError, isRackseedError, type ErrorCode } from '../../model/errors.js';
import type { Logger } from '../../log.js';

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  NODE_NOT_FOUND: 404,
  NODE_BUSY: 409,
  GROUP_NOT_FOUND: 404,
  INVENTORY_NOT_FOUND: 404,
  // The new inventory is in use but the store sync (say) failed: a retry once the store is back settles it.
  INVENTORY_APPLY_FAILED: 503,
  INVENTORY_WRITE_FAILED: 503,
  INVENTORY_DUPLICATE: 409,
  STORE_CONFLICT: 409,
  BAD_REQUEST: 400,
  INVENTORY_INVALID: 400,
  MAC_INVALID: 400,
  HOSTNAME_INVALID: 400,
  HOSTLIST_INVALID: 400,
  CSV_INVALID: 400,
  LIFECYCLE_INVALID_TRANSITION: 409,
  // The server's own credentials file is unsafe (mode) or malformed: the request cannot be served as configured.
  BMC_CREDENTIALS: 409,
};

/** Every API error is JSON: { error: { code, message } }, with a stable code clients can match on. */
export function errorBody(code: ErrorCode, message: string): { error: { code: ErrorCode; message: string } } {
  return { error: { code, message } };
}

export function notFoundHandler(): RequestHandler {
  return (req, res) => {
    res.status(404).json(errorBody('NOT_FOUND', `no route for ${req.method} ${req.path}`));
  };
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) {
      // A response already under way (a file stream that failed mid-read): no error body can follow its headers.
      log.error({ err, path: req.path }, 'request failed after its response started: connection closed');
      res.destroy();
      return;
    }
    // A handler may have set another type before it failed (express.static's file type, a text/plain script).
    const send = (status: number, body: ReturnType<typeof errorBody>) => res.status(status).set('content-type', 'application/json; charset=utf-8').json(body);
    if (isRackseedError(err)) {
      const status = STATUS_BY_CODE[err.code] ?? 500;
      if (status >= 500) log.error({ err, path: req.path }, 'request failed');
      send(status, errorBody(err.code, err.message));
      return;
    }
    const status = httpStatusOf(err);
    if (status < 500) {
      const { code, message } = clientErrorOf(err, req, status);
      send(status, errorBody(code, message));
      return;
    }
    log.error({ err, path: req.path }, 'request failed');
    send(500, errorBody('INTERNAL', 'internal error (see the server log)'));
  };
}

/** The HTTP status an express-raised error carries (body-parser, express.static), else 500. */
export function httpStatusOf(err: unknown): number {
  return typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 500;
}

/**
 * What a client error raised by express middleware may tell the client. body-parser's messages (malformed JSON, too
 * large) are for it; express.static's (404, 403) name the server's file system paths, so only the request path.
 */
export function clientErrorOf(err: unknown, req: Request, status: number): { code: ErrorCode; message: string } {
  if (typeof (err as { type?: unknown }).type === 'string') return { code: 'BAD_REQUEST', message: (err as Error).message };
  if (status === 404) return { code: 'NOT_FOUND', message: `no file ${req.baseUrl}${req.path}` };
  return { code: 'BAD_REQUEST', message: `refused: ${req.baseUrl}${req.path}` };
}

export function badRequest(message: string): RackseedError {
  return new RackseedError('BAD_REQUEST', message);
}
