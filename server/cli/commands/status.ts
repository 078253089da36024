import type { Command } from 'commander';
import type { FleetStatus } from '../../services/node-view.js';
import { LIFECYCLE_STATES } from '../../model/lifecycle.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { keyValues, printJson } from '../output.js';

export function registerStatus(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  program
    .command('status')
    .description('fleet summary: nodes per lifecycle state')
    .action(async (_o, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      const s = await client.get<FleetStatus>('/status');
      if (out.json) return printJson(out, s);
      out.write(
        `${keyValues([
          ['server', s.server],
          ['nodes', s.nodes],
          ['discovered', s.discovered],
          ['reimage pending', s.reimagePending],
          ['wipe pending', s.wipePending],
          ...LIFECYCLE_STATES.map((st): [string, number] => [`  ${st}`, s.byState[st]]),
          ['  unknown', s.byState.unknown],
        ])}\n`,
      );
    });
}
