import type { RequestHandler } from 'express';
import { tokenMatches } from '../../auth/admin-token.js';
import { errorBody } from './errors.js';

/** Bearer-token guard for the admin API. */
export function requireAdminToken(expected: string): RequestHandler {
  return (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match || !tokenMatches(match[1]!, expected)) {
      res.set('WWW-Authenticate', 'Bearer realm="rackseed"');
      res.status(401).json(errorBody('UNAUTHORIZED', match ? 'invalid admin token' : 'missing admin token (Authorization: Bearer <token>)'));
      return;
    }
    next();
  };
}
