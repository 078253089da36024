import { realpath } from 'node:fs/promises';
import path from 'node:path';
import type { RequestHandler } from 'express';
import { isInside } from '../../util/inside.js';
import { errorBody } from './errors.js';

/**
 * Put in front of express.static: refuses a request whose file, once symlinks are followed, lies outside `root`
 * (express.static blocks `..` in the URL but follows a symlink wherever it leads, e.g. a link to the admin token or
 * to /etc). `allowTargets` are real paths outside the root a link may lead to (Debian's /usr/lib/ipxe/ipxe.efi
 * links into /boot). A path that does not exist is left to express.static, which answers 404. The root and the
 * targets are resolved on every request (a few realpath calls): a root created after the server started (the iPXE
 * package installed later) must start working, not stay an error until a restart.
 */
export function confinedToRoot(root: string, allowTargets: readonly string[] = []): RequestHandler {
  const resolveAllowed = async () => {
    const targets: string[] = [];
    for (const t of allowTargets) {
      try {
        targets.push(await realpath(t));
      } catch {
        // a target that does not exist allows nothing
      }
    }
    const rootReal = await realpath(root).catch(() => undefined);
    return { root: rootReal, targets };
  };
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    let relativePath: string;
    try {
      relativePath = decodeURIComponent(req.path);
    } catch {
      res.status(400).json(errorBody('BAD_REQUEST', 'malformed percent-encoding in the path'));
      return;
    }
    void (async () => {
      const { root: rootReal, targets } = await resolveAllowed();
      // No root (yet): nothing under it exists, and express.static answers 404.
      if (rootReal === undefined) return next();
      let real: string;
      try {
        real = await realpath(path.join(rootReal, relativePath));
      } catch {
        return next();
      }
      if (isInside(real, rootReal) || targets.some((t) => isInside(real, t))) return next();
      res.status(404).json(errorBody('NOT_FOUND', `no file ${req.baseUrl}${req.path}`));
    })().catch(next);
  };
}
