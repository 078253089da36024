import { CommanderError } from 'commander';
import { isRackseedError } from '../model/errors.js';
import { CliExit, EXIT_USAGE, UsageError } from './exit.js';
import { buildProgram } from './program.js';

/** Entry point of the `rackseed` command: one-line reason and a non-zero exit on any failure. */
async function main(argv: string[]): Promise<number> {
  const program = buildProgram((s) => process.stdout.write(s));
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CliExit) return e.code;
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_USAGE;
    if (e instanceof UsageError) {
      process.stderr.write(`rackseed: ${e.message}\n`);
      return EXIT_USAGE;
    }
    const message = isRackseedError(e) ? e.message : e instanceof Error ? e.message : String(e);
    process.stderr.write(`rackseed: ${message.split('\n')[0]}\n`);
    return 1;
  }
}

const code = await main(process.argv);
// `serve` resolves only when the server stopped; other verbs return at once.
process.exitCode = code;
