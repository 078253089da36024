import { Argument, type Command } from 'commander';
import { DISRUPTIVE_POWER_ACTIONS, POWER_ACTIONS, type PowerAction, type PowerResult } from '../../power/types.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { CliExit, EXIT_FAILED } from '../exit.js';
import { printJson, table } from '../output.js';
import { phaseProgress } from './reimage.js';

interface PowerDryRun {
  type: 'result';
  dryRun: true;
  action: PowerAction;
  plan: Array<{ node: string; bmc?: { address: string; kind: string }; problem?: string }>;
}

interface PowerResponse {
  type: 'result';
  dryRun: false;
  action: PowerAction;
  results: PowerResult[];
  counts: { ok: number; failed: number };
}

export function registerPower(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  program
    .command('power')
    .description('BMC power control over IPMI or Redfish, in parallel; exit status 1 if any node failed (off, cycle and pxe are a dry run without --yes)')
    .addArgument(new Argument('<action>', 'status, on, off, cycle, or pxe (network boot once, then cycle or power on)').choices(POWER_ACTIONS))
    .argument('<targets...>', 'node names, hostlists (gpu[01-16]), group:NAME, role:NAME, label key=value')
    .option('--yes', 'really switch off or restart the machines (off, cycle, pxe); without it: list the BMCs, change nothing')
    .action(async (action: PowerAction, targets: string[], o: { yes?: boolean }, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      if (DISRUPTIVE_POWER_ACTIONS.includes(action) && !o.yes) {
        const dry = await client.post<PowerDryRun>('/power', { action, targets, confirm: false });
        if (out.json) return printJson(out, dry);
        out.write(`${table(['NODE', 'BMC', 'NOTE'], dry.plan.map((n) => [n.node, n.bmc ? `${n.bmc.kind} ${n.bmc.address}` : undefined, n.problem]))}\n`);
        const reachable = dry.plan.filter((n) => n.bmc).length;
        out.write(`would ${action === 'pxe' ? 'network-boot' : `power ${action}`} ${reachable} of ${dry.plan.length} node${dry.plan.length === 1 ? '' : 's'} through their BMC\nnothing changed; re-run with --yes\n`);
        return;
      }
      // The table follows at once; off a terminal, progress lines would only repeat it.
      const progress = phaseProgress(out, { plainLines: false });
      let r: PowerResponse;
      try {
        r = await client.postStream<PowerResponse>('/power', { action, targets, confirm: true }, (line) => {
          const p = line as { type?: string; done: number; total: number };
          if (p.type === 'progress') progress.update('power', p.done, p.total);
        });
      } finally {
        progress.stop();
      }
      if (out.json) printJson(out, r);
      else {
        out.write(
          `${table(
            ['NODE', 'RESULT', 'STATE', 'TIME', 'ERROR'],
            r.results.map((x) => [x.node, x.ok ? 'ok' : x.timedOut ? 'timeout' : 'failed', x.state, `${(x.durationMs / 1000).toFixed(1)}s`, x.error]),
          )}\n${r.counts.ok} ok, ${r.counts.failed} failed\n`,
        );
      }
      if (r.counts.failed > 0) throw new CliExit(EXIT_FAILED);
    });
}
