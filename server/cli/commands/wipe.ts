import type { Command } from 'commander';
import { WIPE_MODES, type WipeMode } from '../../model/lifecycle.js';
import type { ReimagePlan, ReimageSummary, WipeCancelSummary } from '../../services/reimage.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { CliExit, EXIT_FAILED, UsageError } from '../exit.js';
import { printJson, table, type Output } from '../output.js';
import { planOrMark, PLAN_ROWS, printSummary, REBOOT_LABEL } from './reimage.js';

interface WipeResult {
  type: 'result';
  dryRun: false;
  counts: ReimagePlan['counts'];
  summary: ReimageSummary;
}

function printPlan(out: Output, plan: ReimagePlan): void {
  const rows = plan.nodes.slice(0, PLAN_ROWS).map((n) => [
    n.node,
    n.state,
    n.skip ? 'skipped' : `${REBOOT_LABEL[n.reboot]}${n.bmcFallback ? ', then bmc' : ''}`,
    n.skip ?? (n.alreadyPending ? 'wipe already pending' : undefined),
  ]);
  out.write(`${table(['NODE', 'STATE', 'REBOOT', 'NOTE'], rows)}\n`);
  if (plan.nodes.length > PLAN_ROWS) out.write(`... and ${plan.nodes.length - PLAN_ROWS} more (--json lists every node)\n`);
  const c = plan.counts;
  out.write(`would ${plan.wipe ?? '?'}-wipe EVERY disk of ${c.toMark} of ${c.targeted} node${c.targeted === 1 ? '' : 's'} on their next network boot (reboot: ${c.ssh} over ssh, ${c.bmc} through their BMC, ${c.manual} by hand)${c.skipped ? `; ${c.skipped} skipped` : ''}\n`);
  out.write('every disk each machine sees is erased: shared storage attached to it (a SAS JBOD, iSCSI or FC LUNs) too\n');
  out.write('nothing changed; re-run with --yes to erase them\n');
}

export function registerWipe(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  program
    .command('wipe <targets...>')
    .description('erase every disk of the nodes on their next network boot, then power them off (a dry run without --yes)')
    .option('--mode <mode>', `${WIPE_MODES.join(' or ')}: quick erases every signature and the first and last 16 MiB of each disk; full overwrites every byte with zeros and reads it back`, 'quick')
    .option('--yes', 'really do it (without it: print what would happen, change nothing)')
    .option('--cancel', 'withdraw the pending wipe of these nodes instead (a node wiping now is past cancelling, unless --force abandons it)')
    .option('--force', 'also wipe nodes installing or wiping now (left alone without it); with --cancel, abandon wipes under way (the node fails in stage wipe)')
    .addHelpText(
      'after',
      '\nTargets: node names, hostlists (gpu[01-16]), group:NAME, role:NAME, label key=value.\nA wiped node boots nothing until it is reimaged (rackseed reimage NODE --yes); decommission it with rackseed node remove.',
    )
    .action(async (targets: string[], o: { mode: string; yes?: boolean; cancel?: boolean; force?: boolean }, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      if (!(WIPE_MODES as readonly string[]).includes(o.mode)) throw new UsageError(`--mode must be ${WIPE_MODES.join(' or ')}, not ${JSON.stringify(o.mode)}`);
      const mode = o.mode as WipeMode;
      if (o.cancel) {
        const summary = await client.post<WipeCancelSummary>('/wipe/cancel', { targets, ...(o.force ? { force: true } : {}) });
        if (out.json) printJson(out, summary);
        else {
          const rows = [
            ...summary.cancelled.map((n) => [n, 'cancelled']),
            ...summary.underWay.map((n) => [n, 'wiping now: past cancelling (--force abandons it)']),
            ...(summary.abandoned ?? []).map((n) => [n, 'wipe abandoned: failed, its disks in an unknown state']),
            ...summary.notPending.map((n) => [n, 'none pending']),
          ];
          out.write(`${table(['NODE', 'WIPE'], rows)}\n`);
          out.write(`cancelled the pending wipe of ${summary.cancelled.length} of ${rows.length} node(s)\n`);
        }
        if (summary.underWay.length > 0) throw new CliExit(EXIT_FAILED);
        return;
      }
      const body = { targets, mode, ...(o.force ? { force: true } : {}) };
      await planOrMark<WipeResult>({ client, out }, '/wipe', body, o.yes === true, {
        plan: (plan) => printPlan(out, plan),
        result: (r) => {
          printSummary(out, r.summary, `marked for a ${mode} wipe`);
          out.write("each node wipes its disks on its next network boot, then powers off; 'rackseed events NODE' shows it\n");
        },
      });
    });
}
