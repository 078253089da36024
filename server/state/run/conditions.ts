import type { CompiledState, Transport } from '../types.js';
import { buildCommand, commandPlaceOf } from '../modules/cmd.js';
import { shellQuote } from './exec.js';

export type ConditionVerdict = { kind: 'run' } | { kind: 'skip'; comment: string };

/**
 * Salt's global keywords, in Salt's order: onlyif (run only if every command exits 0), unless (skip only if every
 * command exits 0: Salt's _run_check_unless runs the state at the first one that fails), creates (skip if every
 * path exists). A skipped state succeeds without changes. The commands are
 * expected to be read-only, so they run in test mode too. The transport is the runner's guarded one (exec.ts),
 * so each command runs with the run's timeout.
 */
export async function evaluateRunConditions(state: CompiledState, transport: Transport): Promise<ConditionVerdict> {
  // A cmd state's guards run where and as whom its command runs (cwd, runas, env, shell), as Salt runs them: a
  // relative `unless: test -f .built` asked in root's home would re-run a build in /opt/app on every converge.
  const place = state.module === 'cmd' ? commandPlaceOf(state.args) : {};
  const placed = Object.values(place).some((v) => v !== undefined);
  const guard = (command: string) => (placed ? buildCommand(command, place) : command);
  /** Runs the commands in order up to the first that fails, and names it. */
  const firstFailing = async (commands: readonly string[]): Promise<string | undefined> => {
    for (const command of commands) if ((await transport.exec(guard(command))).code !== 0) return command;
    return undefined;
  };
  const onlyifFailed = await firstFailing(state.onlyif);
  if (onlyifFailed !== undefined) return { kind: 'skip', comment: `onlyif condition is false: ${onlyifFailed}` };
  if (state.unless.length > 0 && (await firstFailing(state.unless)) === undefined) {
    return { kind: 'skip', comment: `unless condition is true: ${state.unless.join('; ')}` };
  }
  if (state.creates.length > 0) {
    for (const path of state.creates) {
      const { code } = await transport.exec(`test -e ${shellQuote(path)}`);
      if (code !== 0) return { kind: 'run' };
    }
    return { kind: 'skip', comment: `All files in creates exist: ${state.creates.join(', ')}` };
  }
  return { kind: 'run' };
}
