import type { Command } from 'commander';
import type { GroupView } from '../../services/node-view.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { keyValues, printJson, table } from '../output.js';

export function registerGroup(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  const group = program.command('group').description('inspect node groups');

  group
    .command('list')
    .description('list groups')
    .action(async (_o, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      const { groups } = await client.get<{ groups: GroupView[] }>('/groups');
      if (out.json) return printJson(out, groups);
      out.write(`${table(['GROUP', 'IMAGE', 'ROLES', 'NODES'], groups.map((g) => [g.name, g.image, g.roles.join(',') || undefined, g.nodes.length]))}\n`);
    });

  group
    .command('show <name>')
    .description('show one group')
    .action(async (name: string, _o, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      const { group: g } = await client.get<{ group: GroupView }>(`/groups/${encodeURIComponent(name)}`);
      if (out.json) return printJson(out, g);
      const gpu = g.hardware.gpu;
      out.write(
        `${keyValues([
          ['group', g.name],
          ['description', g.description],
          ['image', g.image],
          ['roles', g.roles.join(', ') || undefined],
          ['kernel args', g.kernelArgs.join(' ') || undefined],
          ['installed boot', g.installedBoot],
          ['uefi loader', g.uefiLoader],
          ['lease', `${g.leaseSeconds} s`],
          ['selector', g.selector === undefined ? undefined : Object.entries(g.selector).map(([k, v]) => `${k}=${v}`).join(', ') || '{} (every node without a group)'],
          ['gpus', gpu ? `${gpu.count} x ${gpu.model} (${gpu.memoryMiB} MiB)` : undefined],
          ['nodes', g.nodes.join(', ') || undefined],
        ])}\n`,
      );
    });
}
