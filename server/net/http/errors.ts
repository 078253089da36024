import type { ErrorRequestHandler, RequestHandler } from 'express';
import { RackseedError, isRackseedError, type ErrorCode } from '../../model/errors.js';
import type { Logger } from '../../log.js';

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  NODE_NOT_FOUND: 404,
  GROUP_NOT_FOUND: 404,
  INVENTORY_NOT_FOUND: 404,
  INVENTORY_DUPLICATE: 409,
  STORE_CONFLICT: 409,
  BAD_REQUEST: 400,
  INVENTORY_INVALID: 400,
  MAC_INVALID: 400,
  HOSTNAME_INVALID: 400,
  HOSTLIST_INVALID: 400,
  CSV_INVALID: 400,
  LIFECYCLE_INVALID_TRANSITION: 409,
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
    if (isRackseedError(err)) {
      const status = STATUS_BY_CODE[err.code] ?? 500;
      if (status >= 500) log.error({ err, path: req.path }, 'request failed');
      res.status(status).json(errorBody(err.code, err.message));
      return;
    }
    // body-parser errors (malformed JSON, too large) carry an HTTP status of their own.
    const status = typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 500;
    if (status < 500) {
      res.status(status).json(errorBody('BAD_REQUEST', (err as Error).message));
      return;
    }
    log.error({ err, path: req.path }, 'request failed');
    res.status(500).json(errorBody('INTERNAL', 'internal error (see the server log)'));
  };
}

export function badRequest(message: string): RackseedError {
  return new RackseedError('BAD_REQUEST', message);
}
