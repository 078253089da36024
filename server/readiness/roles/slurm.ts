import { shellQuote } from '../../state/modules/shell.js';
import type { ExecResult } from '../../state/types.js';
import { classifySlurmState, parseScontrolPing, parseScontrolShowNode } from '../parsers/slurm.js';
import type { CheckContext, CheckSpec, Evidence } from '../types.js';
import { commandFailed, failed, passed } from './evidence.js';
import { isRackseedDrain } from '../slurm-drain.js';

/**
 * slurm-compute: the controller knows the node and would give it jobs (idle, mixed or allocated; not down,
 * drained, not responding). A drained node fails with the Slurm reason. slurm-controller: slurmctld is active and
 * answers `scontrol ping`. slurm-login: a controller (the primary, or a backup that took over) answers from the login
 * node (users can submit).
 */

const EXPECTED_STATE = 'idle, mixed or allocated';

/** PURE: `scontrol show node NAME` output. */
export function evaluateSlurmNode(output: ExecResult, ctx: CheckContext, role = 'slurm-compute'): Evidence[] {
  const check = 'slurm.node_state';
  // scontrol's own line for an unknown node (src/scontrol/info_node.c). "not found" elsewhere, a drain Reason or a
  // shell's "scontrol: not found", says nothing about registration.
  const notFound = output.code !== 0 && /^Node \S+ not found$/m.test(output.stdout);
  if (output.code !== 0 || notFound) {
    if (notFound) return [failed(role, check, EXPECTED_STATE, 'not registered', `the Slurm controller does not know node ${ctx.node}`)];
    return [commandFailed(role, check, EXPECTED_STATE, 'scontrol show node', output)];
  }
  const node = parseScontrolShowNode(output.stdout).find((n) => n.node.toLowerCase() === ctx.node.toLowerCase());
  if (!node) return [failed(role, check, EXPECTED_STATE, 'not registered', `scontrol show node printed no entry for ${ctx.node}`)];
  const c = classifySlurmState(node.state);
  if (c.usable) return [passed(role, check, EXPECTED_STATE, node.state)];
  // rackseed's own drain of a node whose other checks failed (slurm-drain.ts): it says nothing about Slurm, and
  // failing here would keep the node from ever passing, so the drain could never be lifted.
  const withoutDrain = node.state.replace(/\+(DRAIN|DRAINING|DRAINED)\b/gi, '');
  if (isRackseedDrain(node.reason) && classifySlurmState(withoutDrain).usable) {
    if (ctx.slurmDrainUnready) {
      return [passed(role, check, EXPECTED_STATE, node.state, `drained by rackseed's readiness check (Reason=${node.reason}): lifted once the other checks pass`)];
    }
    // The option was turned off since: nothing will lift this drain but an operator.
    return [failed(role, check, EXPECTED_STATE, node.state, `drained by rackseed's readiness check (Reason=${node.reason}), and slurm.drain_unready is off now: lift it with scontrol update nodename=${ctx.node} state=resume`)];
  }
  return [failed(role, check, EXPECTED_STATE, node.state, `Slurm reports ${ctx.node} ${c.why}${node.reason ? `: Reason=${node.reason}` : ''}`)];
}

const SLURMCTLD_MARK = '@@rackseed slurmctld@@';

/** PURE: `scontrol ping` then the marker and `systemctl is-active slurmctld`. */
export function evaluateController(output: ExecResult, ctx: CheckContext): Evidence[] {
  const role = 'slurm-controller';
  const at = output.stdout.indexOf(SLURMCTLD_MARK);
  const pingText = at >= 0 ? output.stdout.slice(0, at) : output.stdout;
  const active = at >= 0 ? output.stdout.slice(at + SLURMCTLD_MARK.length).trim() : '';
  const out: Evidence[] = [
    active === 'active'
      ? passed(role, 'slurm.slurmctld', 'active', active)
      : failed(role, 'slurm.slurmctld', 'active', active || 'unknown', `systemd reports slurmctld ${active || 'unknown'} on ${ctx.node}`),
  ];
  out.push(pingEvidence(role, pingText, ctx.node));
  return out;
}

/** Host names compared by their first label: slurm.conf may name a controller short or fully qualified. */
const sameHost = (a: string, b: string): boolean => a.split('.')[0]!.toLowerCase() === b.split('.')[0]!.toLowerCase();

/**
 * The cluster has a working controller when any of them answers: with SlurmctldHost listed twice (rackseed writes
 * one line per slurm-controller node), a backup that took over serves jobs while the primary is down. On a
 * controller node (`self`), that node's own slurmctld must also answer: "active" in systemd is not "serving".
 */
function pingEvidence(role: string, text: string, self?: string): Evidence {
  const pings = parseScontrolPing(text);
  if (pings.length === 0) return failed(role, 'slurm.ping', 'UP', 'no answer', `scontrol ping printed no controller status: ${text.trim().slice(0, 200) || '(nothing)'}`);
  const seen = pings.map((p) => `${p.role} ${p.controller} ${p.up ? 'UP' : 'DOWN'}`).join(', ');
  const down = pings.filter((p) => !p.up);
  const serving = pings.find((p) => p.up);
  if (!serving) return failed(role, 'slurm.ping', 'UP', seen, `no Slurm controller answers (${down.map((p) => `slurmctld on ${p.controller} is DOWN`).join(', ')})`);
  const own = self === undefined ? undefined : pings.find((p) => sameHost(p.controller, self));
  if (own && !own.up) return failed(role, 'slurm.ping', 'UP', seen, `slurmctld on this node (${own.controller}, the ${own.role} controller) does not answer; ${serving.controller} serves the cluster`);
  if (down.length === 0) return passed(role, 'slurm.ping', 'UP', seen);
  return passed(role, 'slurm.ping', 'UP', seen, `${down.map((p) => `the ${p.role} controller ${p.controller} is DOWN`).join(', ')}; ${serving.controller} (${serving.role}) serves the cluster`);
}

const compute: CheckSpec = {
  id: 'slurm.node_state',
  role: 'slurm-compute',
  command: (ctx) => `scontrol show node ${shellQuote(ctx.node)} 2>&1`,
  evaluate: (output, ctx) => evaluateSlurmNode(output, ctx),
};

const controller: CheckSpec = {
  id: 'slurm.controller',
  role: 'slurm-controller',
  // scontrol ping exits 1 when no controller answers, and root also gets a "RESTORE SLURMCTLD" banner when any is
  // down: the evaluation reads its per-controller lines, not its status.
  command: () => `scontrol ping 2>&1; echo '${SLURMCTLD_MARK}'; systemctl is-active slurmctld 2>&1; exit 0`,
  evaluate: evaluateController,
};

const login: CheckSpec = {
  id: 'slurm.ping',
  role: 'slurm-login',
  command: () => 'scontrol ping 2>&1; exit 0',
  evaluate: (output) => [pingEvidence('slurm-login', output.stdout)],
};

export const SLURM_COMPUTE_CHECKS: readonly CheckSpec[] = [compute];
export const SLURM_CONTROLLER_CHECKS: readonly CheckSpec[] = [controller];
export const SLURM_LOGIN_CHECKS: readonly CheckSpec[] = [login];
