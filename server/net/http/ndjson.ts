import type { Response } from 'express';
import { isRackseedError } from '../../model/errors.js';
import type { Logger } from '../../log.js';
import { errorBody } from './errors.js';

/**
 * Answers a long fleet operation as NDJSON: one line per event as it happens (so the CLI shows live progress),
 * then the summary as the last line. An error after the first byte cannot change the status code any more, so it
 * is sent as a final `{ "error": { code, message } }` line, which ApiClient.postStream turns back into an error.
 */
export async function streamNdjson(res: Response, log: Logger, work: (send: (line: unknown) => boolean) => Promise<unknown>, heartbeatMs = HEARTBEAT_MS): Promise<void> {
  res.status(200).type('application/x-ndjson');
  res.setHeader('cache-control', 'no-store');
  res.flushHeaders();
  // False when the line waits in memory for a slow client (a caller with much to send may wait for 'drain').
  const send = (line: unknown): boolean => !res.writableEnded && res.write(`${JSON.stringify(line)}\n`);
  // An empty line now and then while no node has finished: HTTP clients and proxies give up on a body that stays
  // silent (Node's fetch after 5 minutes: the CLI said "terminated" while a long apply went on), and readers skip it.
  const heartbeat = setInterval(() => {
    if (!res.writableEnded) res.write('\n');
  }, heartbeatMs);
  try {
    send(await work(send));
  } catch (err) {
    if (isRackseedError(err)) send(errorBody(err.code, err.message));
    else {
      log.error({ err }, 'streamed request failed');
      send(errorBody('INTERNAL', 'internal error (see the server log)'));
    }
  } finally {
    clearInterval(heartbeat);
  }
  res.end();
}

/** How often a silent NDJSON answer sends an empty line. */
export const HEARTBEAT_MS = 15_000;
