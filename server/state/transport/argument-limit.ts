import { RackseedError } from '../../model/errors.js';

/**
 * Linux's MAX_ARG_STRLEN: one argument to execve may not reach 128 KiB (its NUL counted); beyond it execve fails with
 * E2BIG and the command never starts. Both transports hand the command to a shell as one argument: `sh -c <command>`
 * on this machine, `<login shell> -c <line>` through sshd on a node.
 */
export const MAX_ARGUMENT_BYTES = 128 * 1024 - 1;

/**
 * The error for a command that cannot be passed as one argument. `maxBytes` is the longest command accepted, or
 * undefined when execve itself refused (all arguments and the environment together over the system's ARG_MAX). The
 * cure is the same either way: data belongs on stdin or in a file, never in the command line.
 */
export function commandTooLong(bytes: number, maxBytes: number | undefined): RackseedError {
  const limit = maxBytes === undefined ? 'with the environment it exceeds the system\'s ARG_MAX' : `at most ${maxBytes}`;
  return new RackseedError(
    'STATE_COMMAND_TOO_LONG',
    `command of ${bytes} bytes is too long to pass as one argument (${limit}); pass data on stdin or in a file`,
    maxBytes === undefined ? { bytes } : { bytes, maxBytes },
  );
}
