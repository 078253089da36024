import type { Response } from 'express';
import { isRackseedError } from '../../model/errors.js';
import type { Logger } from '../../log.js';
import { errorBody } from './errors.js';

/**
 * Answers a long fleet operation as NDJSON: one line per event as it happens (so the CLI shows live progress),
 * then the summary as the last line. An error after the first byte cannot change the status code any more, so it
 * is sent as a final `{ "error": { code, message } }` line, which ApiClient.postStream turns back into an error.
 */
export async function streamNdjson(res: Response, log: Logger, work: (send: (line: unknown) => void) => Promise<unknown>): Promise<void> {
  res.status(200).type('application/x-ndjson');
  res.setHeader('cache-control', 'no-store');
  res.flushHeaders();
  const send = (line: unknown) => {
    if (!res.writableEnded) res.write(`${JSON.stringify(line)}\n`);
  };
  try {
    send(await work(send));
  } catch (err) {
    if (isRackseedError(err)) send(errorBody(err.code, err.message));
    else {
      log.error({ err }, 'streamed request failed');
      send(errorBody('INTERNAL', 'internal error (see the server log)'));
    }
  }
  res.end();
}
