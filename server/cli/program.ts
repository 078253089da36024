import { Command } from 'commander';
import { clientContext, type GlobalOptions } from './context.js';
import { registerGroup } from './commands/group.js';
import { registerInstaller } from './commands/installer.js';
import { registerImage } from './commands/image.js';
import { registerNode } from './commands/node.js';
import { registerServe } from './commands/serve.js';
import { registerStatus } from './commands/status.js';
import { registerPower } from './commands/power.js';
import { registerReimage } from './commands/reimage.js';
import { registerState } from './commands/state.js';
import { registerReady } from './commands/ready.js';
import { registerAudit } from './commands/audit.js';
import { registerRuns } from './commands/runs.js';
import { registerEvents } from './commands/events.js';
import { registerConverge } from './commands/converge.js';
import { registerLab } from './commands/lab.js';
import { registerStore } from './commands/store.js';
import { registerBackup } from './commands/backup.js';
import { registerExec } from './commands/exec.js';
import { registerWipe } from './commands/wipe.js';

/** Builds the command tree; `write` receives normal output (tests capture it). */
export function buildProgram(write: (s: string) => void): Command {
  const program = new Command('rackseed')
    .description('bare-metal provisioning: PXE/iPXE boot, images, states, readiness')
    .option('-c, --config <file>', 'configuration file', process.env.RACKSEED_CONFIG ?? 'rackseed.yaml')
    .option('--server <url>', 'rackseed server URL (default: from the config file; env RACKSEED_URL)')
    .option('--token <token>', 'admin token (default: the config\'s data dir; env RACKSEED_TOKEN)')
    .option('--json', 'machine-readable output')
    .showHelpAfterError()
    .exitOverride();
  const ctx = (opts: GlobalOptions) => clientContext(opts, write);
  registerServe(program);
  registerNode(program, ctx);
  registerGroup(program, ctx);
  registerStatus(program, ctx);
  registerInstaller(program, write);
  registerImage(program, ctx, write);
  registerState(program, ctx);
  registerReady(program, ctx);
  registerConverge(program, ctx);
  registerAudit(program, ctx);
  registerExec(program, ctx);
  registerRuns(program, ctx);
  registerEvents(program, ctx);
  registerLab(program, write);
  registerReimage(program, ctx);
  registerWipe(program, ctx);
  registerPower(program, ctx);
  registerStore(program, write);
  registerBackup(program, write);
  return program;
}
