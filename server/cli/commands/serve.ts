import type { Command } from 'commander';
import { loadConfig } from '../../config.js';
import { startServer } from '../../main.js';
import type { GlobalOptions } from '../context.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the server (HTTP boot scripts and admin API, TFTP, DHCP as configured)')
    .action(async (_o, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const config = loadConfig(opts.config);
      // SIGHUP's default action ends the process: one that arrives while the server starts (a reload after an
      // inventory edit, logrotate) is held and carried out once the server runs.
      let hupDuringStart = false;
      const holdHup = () => {
        hupDuringStart = true;
      };
      process.on('SIGHUP', holdHup);
      let server;
      try {
        server = await startServer(config, {
          onTokenCreated: (token, file) => {
            // Printed once, at the start that made it; afterwards it is only in the 0600 file.
            process.stderr.write(`rackseed: admin token created (stored in ${file}):\n  ${token}\n`);
          },
        });
      } finally {
        process.off('SIGHUP', holdHup);
      }
      if (hupDuringStart) server.reload();
      server.log.info({ url: server.httpUrl, inventory: config.inventoryPath, nodes: server.inventory.inventory.nodes.size }, 'rackseed is running');
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          server.log.info({ signal }, 'stopping');
          server.close().then(resolve, resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
