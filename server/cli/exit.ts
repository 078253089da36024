/**
 * Thrown by a command that printed its own report and only needs a non-zero exit status (a state run with
 * failures, a dry run that found drift). main() exits with `code` and prints nothing more.
 */
export class CliExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = 'CliExit';
  }
}

/** A command line the command cannot run as given (a missing target, a malformed option): exits EXIT_USAGE. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit statuses the fleet verbs share; documented in the README's CLI reference. */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** A dry run (state test, audit) found changes to make: the fleet has drifted. */
export const EXIT_DRIFT = 3;
