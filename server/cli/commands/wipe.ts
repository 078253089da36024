import type { Command } from 'commander';
import { WIPE_MODES, type WipeMode } from '../../model/lifecycle.js';
import type { ReimagePlan, ReimageProgress, ReimageSummary, WipeCancelSummary } from '../../services/reimage.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { CliExit, EXIT_FAILED, UsageError } from '../exit.js';
import { keyValues, printJson, table, type Output } from '../output.js';
import { phaseProgress, PLAN_ROWS, REBOOT_LABEL } from './reimage.js';

interface DryRunResult {
  type: 'result';
  dryRun: true;
  plan: ReimagePlan;
}

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
  out.write('nothing changed; re-run with --yes to erase them\n');
}

function printSummary(out: Output, mode: WipeMode, s: ReimageSummary): void {
  const c = s.counts;
  out.write(
    `${keyValues([
      [`marked for a ${mode} wipe`, c.marked],
      ['not marked', c.notMarked],
      ['rebooted over ssh', c.rebootedSsh],
      ['rebooted through bmc', c.rebootedBmc],
      ['reboot by hand', c.manual],
      ['reboot failed', c.failed],
      ...(c.rebootUnderWay > 0 ? [['reboot already under way (another request)', c.rebootUnderWay] as [string, number]] : []),
    ])}\n`,
  );
  const attention = [
    ...s.notMarked.map((n) => [n.node, 'not marked', n.error]),
    ...s.reboots.filter((r) => !r.ok && r.method !== 'manual').map((r) => [r.node, `${r.method} failed`, r.sshError ? `${r.error} (ssh: ${r.sshError})` : r.error]),
    ...s.reboots.filter((r) => r.method === 'manual').map((r) => [r.node, 'reboot by hand', r.error]),
  ];
  if (attention.length > 0) {
    out.write(`${table(['NODE', 'NEEDS', 'WHY'], attention.slice(0, PLAN_ROWS))}\n`);
    if (attention.length > PLAN_ROWS) out.write(`... and ${attention.length - PLAN_ROWS} more (--json lists every node)\n`);
  }
  out.write("each node wipes its disks on its next network boot, then powers off; 'rackseed events NODE' shows it\n");
}

export function registerWipe(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  program
    .command('wipe <targets...>')
    .description('erase every disk of the nodes on their next network boot, then power them off (a dry run without --yes)')
    .option('--mode <mode>', `${WIPE_MODES.join(' or ')}: quick erases every signature and the first and last 16 MiB of each disk; full overwrites every byte with zeros and reads it back`, 'quick')
    .option('--yes', 'really do it (without it: print what would happen, change nothing)')
    .option('--cancel', 'withdraw the pending wipe of these nodes instead (a node wiping now is past cancelling)')
    .option('--force', 'also wipe nodes installing or wiping now (left alone without it)')
    .addHelpText(
      'after',
      '\nTargets: node names, hostlists (gpu[01-16]), group:NAME, role:NAME, label key=value.\nA wiped node boots nothing until it is reimaged (rackseed reimage NODE --yes); decommission it with rackseed node remove.',
    )
    .action(async (targets: string[], o: { mode: string; yes?: boolean; cancel?: boolean; force?: boolean }, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      if (!(WIPE_MODES as readonly string[]).includes(o.mode)) throw new UsageError(`--mode must be ${WIPE_MODES.join(' or ')}, not ${JSON.stringify(o.mode)}`);
      const mode = o.mode as WipeMode;
      if (o.cancel && o.force) throw new UsageError('--cancel takes no --force');
      if (o.cancel) {
        const summary = await client.post<WipeCancelSummary>('/wipe/cancel', { targets });
        if (out.json) printJson(out, summary);
        else {
          const rows = [
            ...summary.cancelled.map((n) => [n, 'cancelled']),
            ...summary.underWay.map((n) => [n, 'wiping now: past cancelling']),
            ...summary.notPending.map((n) => [n, 'none pending']),
          ];
          out.write(`${table(['NODE', 'WIPE'], rows)}\n`);
          out.write(`cancelled the pending wipe of ${summary.cancelled.length} of ${rows.length} node(s)\n`);
        }
        if (summary.underWay.length > 0) throw new CliExit(EXIT_FAILED);
        return;
      }
      const body = { targets, mode, ...(o.force ? { force: true } : {}) };
      if (!o.yes) {
        const dry = await client.post<DryRunResult>('/wipe', { ...body, confirm: false });
        if (out.json) return printJson(out, dry);
        return printPlan(out, dry.plan);
      }
      const progress = phaseProgress(out, { plainLines: true });
      let result: WipeResult;
      try {
        result = await client.postStream<WipeResult>('/wipe', { ...body, confirm: true }, (line) => {
          const p = line as ReimageProgress & { type?: string };
          if (p.type === 'progress') progress.update(p.phase, p.done, p.total);
        });
      } finally {
        progress.stop();
      }
      if (out.json) printJson(out, result);
      else printSummary(out, mode, result.summary);
      if (result.summary.counts.failed > 0 || result.summary.counts.notMarked > 0) throw new CliExit(EXIT_FAILED);
    });
}
