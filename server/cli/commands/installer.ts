import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../config.js';
import { buildInstaller } from '../../images/installer-build.js';
import type { GlobalOptions } from '../context.js';
import { keyValues, printJson } from '../output.js';

/** Runs on the server host itself (it writes into the data directory), so it reads the config, not the API. */
export function registerInstaller(program: Command, write: (s: string) => void): void {
  const installer = program.command('installer').description('the installer kernel and initramfs nodes boot to install their image');
  installer
    .command('build')
    .description('build <data_dir>/files/installer/{vmlinuz,initrd.img} from Debian packages (skipped when current)')
    .option('--force', 'rebuild even when the output is current')
    .option('--out <dir>', 'output directory (default: <data_dir>/files/installer)')
    .option('--recipe-dir <dir>', "a copy of images/installer/ with the site's own changes (more kernel modules, say)")
    .action(async (o: { force?: boolean; out?: string; recipeDir?: string }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const outDir = o.out ?? path.join(loadConfig(opts.config).dataDir, 'files', 'installer');
      const json = opts.json === true;
      const r = await buildInstaller({
        outDir,
        force: o.force === true,
        ...(o.recipeDir !== undefined ? { recipeDir: path.resolve(o.recipeDir) } : {}),
        progress: json ? undefined : (line) => write(`${line}\n`),
      });
      if (json) return printJson({ json, write }, r);
      write(
        `${keyValues([
          ['kernel', r.kernel],
          ['initrd', r.initrd],
          ['kernel package', r.kernelPackage],
          ['initrd size', `${(r.initrdBytes / 1048576).toFixed(1)} MiB`],
          ['modules', r.modules.length],
          ['cached', r.cached ? 'yes' : 'no'],
          ['seconds', r.seconds.toFixed(1)],
        ])}\n`,
      );
    });
}
