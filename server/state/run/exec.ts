import { RackseedError, isRackseedError } from '../../model/errors.js';
import type { ExecOptions, ExecResult, Transport } from '../types.js';

/**
 * The transport as the runner hands it to modules and uses itself: every command gets the run's timeout unless
 * the caller chose one, and a timeout error always names the command and the limit (whatever the transport put
 * in it), so the failed state's comment can say which command hung.
 */
export function guardTransport(transport: Transport, timeoutMs: number): Transport {
  return {
    target: transport.target,
    async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
      const limit = options.timeoutMs ?? timeoutMs;
      try {
        return await transport.exec(command, { ...options, timeoutMs: limit });
      } catch (error) {
        if (isRackseedError(error) && error.code === 'STATE_TIMEOUT') {
          throw new RackseedError('STATE_TIMEOUT', error.message, { ...error.details, command, timeoutMs: limit }, { cause: error });
        }
        throw error;
      }
    },
    readFile: (path) => transport.readFile(path),
    writeFile: (path, data, options) => transport.writeFile(path, data, options),
    close: () => transport.close(),
  };
}

/** POSIX single-quoting: the path reaches `test -e` as one word whatever it contains. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
