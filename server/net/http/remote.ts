import type { Request } from 'express';
import { plainAddress } from '../../model/ipv4.js';

/** Who sent the request, for logs and events: an IPv4 client as its dotted quad even on a dual-stack listener. */
export function remoteOf(req: Request): string {
  return plainAddress(req.ip ?? 'unknown');
}
