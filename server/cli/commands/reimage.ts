import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { CancelSummary, ReimagePlan, ReimageProgress, ReimageSummary } from '../../services/reimage.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { CliExit, EXIT_FAILED, UsageError } from '../exit.js';
import { keyValues, printJson, table, type Output } from '../output.js';
import { showCursorOnSignal } from '../../util/cursor-guard.js';

/** Rows shown in a node table before it is cut short (the JSON output always has every node). */
export const PLAN_ROWS = 50;

interface DryRunResult {
  type: 'result';
  dryRun: true;
  plan: ReimagePlan;
}

interface ReimageResult {
  type: 'result';
  dryRun: false;
  counts: ReimagePlan['counts'];
  summary: ReimageSummary & {
    /** Nodes moved into the requested group (--group), with the group they left. */
    moved?: Array<{ node: string; from: string; to: string }>;
  };
}

export const REBOOT_LABEL = { ssh: 'ssh', bmc: 'bmc (pxe)', manual: 'by hand', slurm: 'slurm, when idle' } as const;

/**
 * One progress bar per phase on a terminal (stderr, so stdout stays the report); elsewhere (logs, CI, pipes) a
 * line when a phase starts and ends. Phases arrive in order: a new phase closes the previous one.
 */
export function phaseProgress(out: Output, options: { plainLines: boolean }, stream: NodeJS.WriteStream = process.stderr): { update(phase: string, done: number, total: number): void; stop(): void } {
  const tty = stream.isTTY === true && !out.json;
  const multi = tty ? new cliProgress.MultiBar({ stream, format: '{phase} [{bar}] {value}/{total}', hideCursor: true, clearOnComplete: false }, cliProgress.Presets.shades_classic) : undefined;
  const bars = new Map<string, cliProgress.SingleBar>();
  const releaseCursor = multi ? showCursorOnSignal(stream) : undefined;
  const announced = new Map<string, number>();
  return {
    update(phase, done, total) {
      if (multi) {
        let bar = bars.get(phase);
        if (!bar) bars.set(phase, (bar = multi.create(Math.max(total, 1), done, { phase: phase.padEnd(7) })));
        bar.setTotal(Math.max(total, 1));
        bar.update(done);
        return;
      }
      if (out.json || !options.plainLines) return;
      if (!announced.has(phase)) {
        announced.set(phase, -1);
        out.write(`${phase}: ${total} node${total === 1 ? '' : 's'}...\n`);
      }
      if (done === total && announced.get(phase) !== done) {
        announced.set(phase, done);
        out.write(`${phase}: done (${done}/${total})\n`);
      }
    },
    stop() {
      multi?.stop();
      releaseCursor?.();
    },
  };
}

function printPlan(out: Output, plan: ReimagePlan): void {
  const rows = plan.nodes.slice(0, PLAN_ROWS).map((n) => [
    n.node,
    n.fromGroup !== undefined ? `${n.fromGroup} -> ${n.group}` : n.group,
    n.state,
    n.skip ? 'skipped' : `${REBOOT_LABEL[n.reboot]}${n.bmcFallback ? ', then bmc' : ''}`,
    n.skip ?? (n.alreadyPending ? 'reimage already pending' : undefined),
  ]);
  out.write(`${table(['NODE', 'GROUP', 'STATE', 'REBOOT', 'NOTE'], rows)}\n`);
  if (plan.nodes.length > PLAN_ROWS) out.write(`... and ${plan.nodes.length - PLAN_ROWS} more (--json lists every node)\n`);
  const c = plan.counts;
  const moving = plan.nodes.filter((n) => n.fromGroup !== undefined).length;
  if (moving > 0) out.write(`would move ${moving} node${moving === 1 ? '' : 's'} into group ${plan.nodes.find((n) => n.fromGroup !== undefined)!.group} (their inventory entries' group:)\n`);
  const bySlurm = c.slurm > 0 ? `${c.slurm} by Slurm once their jobs are done, ` : '';
  out.write(`would mark ${c.toMark} of ${c.targeted} node${c.targeted === 1 ? '' : 's'} for reimage (reboot: ${bySlurm}${c.ssh} over ssh, ${c.bmc} through their BMC, ${c.manual} by hand)${c.skipped ? `; ${c.skipped} skipped` : ''}\n`);
  out.write('nothing changed; re-run with --yes\n');
}

/** What the marks and reboots of a reimage (or a wipe: `marked` names its mode) did, and which nodes need a hand. */
export function printSummary(out: Output, s: ReimageResult['summary'], marked = 'marked for reimage'): void {
  const c = s.counts;
  out.write(
    `${keyValues([
      ...(s.moved && s.moved.length > 0 ? [['moved into group ' + s.moved[0]!.to, s.moved.length] as [string, number]] : []),
      [marked, c.marked],
      ['not marked', c.notMarked],
      ...(c.slurmWhenIdle > 0 ? [['rebooted by Slurm when idle', c.slurmWhenIdle] as [string, number]] : []),
      ['rebooted over ssh', c.rebootedSsh],
      ['rebooted through bmc', c.rebootedBmc],
      ['reboot by hand', c.manual],
      ['reboot failed', c.failed],
      ...(c.rebootUnderWay > 0 ? [['reboot already under way (another request)', c.rebootUnderWay] as [string, number]] : []),
    ])}\n`,
  );
  const draining = s.reboots.filter((r) => r.ok && r.method === 'slurm' && !r.underWay);
  if (draining.length > 0) {
    out.write(`${table(['NODE', 'SLURM', 'REBOOT'], draining.slice(0, PLAN_ROWS).map((r) => [r.node, r.slurmState ?? '?', r.slurmState?.startsWith('draining') ? 'when its jobs are done' : 'now']))}\n`);
    if (draining.length > PLAN_ROWS) out.write(`... and ${draining.length - PLAN_ROWS} more (--json lists every node)\n`);
  }
  const attention = [
    ...s.notMarked.map((n) => [n.node, 'not marked', n.error]),
    ...s.reboots.filter((r) => !r.ok && r.method !== 'manual').map((r) => [r.node, `${r.method} failed`, r.sshError ? `${r.error} (ssh: ${r.sshError})` : r.error]),
    ...s.reboots.filter((r) => r.method === 'manual').map((r) => [r.node, 'reboot by hand', r.error]),
  ];
  if (attention.length === 0) return;
  out.write(`${table(['NODE', 'NEEDS', 'WHY'], attention.slice(0, PLAN_ROWS))}\n`);
  if (attention.length > PLAN_ROWS) out.write(`... and ${attention.length - PLAN_ROWS} more (--json lists every node)\n`);
}

export function registerReimage(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  program
    .command('reimage <targets...>')
    .description('mark nodes for reimaging and reboot them into the installer (a dry run without --yes)')
    .option('--yes', 'really do it (without it: print what would happen, change nothing)')
    .option('--cancel', 'withdraw the pending reimage of these nodes instead (no reboot; they boot their installed OS again, back in the group a --group reimage moved them out of)')
    .option('--group <name>', "move the nodes into this inventory group first (edits their entries' group:), so they install its image and roles")
    .option('--force', 'also restart the install of nodes installing now (left alone without it)')
    .option('--when-idle', 'Slurm compute nodes are not rebooted now: Slurm drains them and reboots each once its jobs are done (scontrol reboot ASAP)')
    .addHelpText(
      'after',
      "\nTargets: node names, hostlists (gpu[01-16]), group:NAME, role:NAME, label key=value.\nA node is reinstalled as the inventory describes it; --group moves it into another group first (a node of a range entry\nneeds an entry of its own, or a group column in the range's csv: file).",
    )
    .action(async (targets: string[], o: { yes?: boolean; cancel?: boolean; group?: string; force?: boolean; whenIdle?: boolean }, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      if (o.cancel && o.group !== undefined) throw new UsageError('--cancel takes no --group: it withdraws pending reimages and moves nodes that reimage --group moved back into the group they left');
      if (o.cancel && o.force) throw new UsageError('--cancel takes no --force');
      if (o.cancel && o.whenIdle) throw new UsageError('--cancel takes no --when-idle: it also withdraws the Slurm reboots a --when-idle reimage asked for');
      const body = { targets, ...(o.group !== undefined ? { group: o.group } : {}), ...(o.force ? { force: true } : {}), ...(o.whenIdle ? { whenIdle: true } : {}) };
      if (o.cancel) {
        const summary = await client.post<CancelSummary>('/reimage/cancel', { targets });
        const failed = summary.notRestored.length > 0 || (summary.slurmNotCancelled?.length ?? 0) > 0;
        if (out.json) {
          printJson(out, summary);
          if (failed) throw new CliExit(EXIT_FAILED);
          return;
        }
        const restored = new Map(summary.restored.map((r) => [r.node, `back in group ${r.group}`]));
        for (const r of summary.notRestored) restored.set(r.node, `still in its new group, not moved back to ${r.group}: ${r.error}`);
        const rows = [...summary.cancelled.map((n) => [n, 'cancelled', restored.get(n)]), ...summary.notPending.map((n) => [n, 'none pending', undefined])];
        out.write(`${table(['NODE', 'REIMAGE', 'GROUP'], rows)}\n`);
        out.write(`cancelled the pending reimage of ${summary.cancelled.length} of ${summary.cancelled.length + summary.notPending.length} node(s)`);
        out.write(summary.restored.length > 0 ? `; moved ${summary.restored.length} back into the group they left\n` : '\n');
        if ((summary.slurmCancelled?.length ?? 0) > 0) out.write(`withdrew the Slurm reboot (and its drain) of ${summary.slurmCancelled.length} node(s)\n`);
        for (const n of summary.slurmNotCancelled ?? []) out.write(`${n.node}: its Slurm reboot could not be withdrawn, Slurm still drains and reboots it: ${n.error}\n`);
        if (failed) throw new CliExit(EXIT_FAILED);
        return;
      }
      await planOrMark<ReimageResult>({ client, out }, '/reimage', body, o.yes === true, { plan: (plan) => printPlan(out, plan), result: (r) => printSummary(out, r.summary) });
    });
}

/**
 * The two calls of a marking verb (reimage, wipe): without `yes` the dry run and its plan; with it the marks and
 * reboots, streamed with progress bars, then the summary. Exit 1 when a reboot failed or a node was not marked.
 */
export async function planOrMark<R extends { summary: ReimageSummary }>(
  { client, out }: CliContext,
  route: string,
  body: Record<string, unknown>,
  yes: boolean,
  show: { plan(plan: ReimagePlan): void; result(result: R): void },
): Promise<void> {
  if (!yes) {
    const dry = await client.post<DryRunResult>(route, { ...body, confirm: false });
    if (out.json) return printJson(out, dry);
    return show.plan(dry.plan);
  }
  const progress = phaseProgress(out, { plainLines: true });
  let result: R;
  try {
    result = await client.postStream<R>(route, { ...body, confirm: true }, (line) => {
      const p = line as ReimageProgress & { type?: string };
      if (p.type === 'progress') progress.update(p.phase, p.done, p.total);
    });
  } finally {
    progress.stop();
  }
  if (out.json) printJson(out, result);
  else show.result(result);
  if (result.summary.counts.failed > 0 || result.summary.counts.notMarked > 0) throw new CliExit(EXIT_FAILED);
}
