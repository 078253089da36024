import type { CheckContext, CheckSpec, RoleChecks } from '../types.js';
import { passed } from './evidence.js';
import { BASE_CHECKS } from './base.js';
import { INFINIBAND_CHECKS, infinibandStaticEvidence } from './infiniband.js';
import { K3S_AGENT_CHECKS, K3S_SERVER_CHECKS, k3sRoleOf } from './k3s.js';
import { NVIDIA_CHECKS, nvidiaStaticEvidence } from './nvidia.js';
import { SLURM_COMPUTE_CHECKS, SLURM_CONTROLLER_CHECKS, SLURM_LOGIN_CHECKS } from './slurm.js';

/**
 * Which checks a node gets: one entry per role (names as in examples/inventory.yaml and states/), plus the
 * hardware roles its group's expectations imply (a declared hardware.gpu means the GPUs are checked even if the
 * role list forgot 'nvidia'). A role rackseed has no checks for is reported as such, never silently skipped.
 */

const FIXED: Record<string, readonly CheckSpec[]> = {
  base: BASE_CHECKS,
  nvidia: NVIDIA_CHECKS,
  infiniband: INFINIBAND_CHECKS,
  'slurm-compute': SLURM_COMPUTE_CHECKS,
  'slurm-controller': SLURM_CONTROLLER_CHECKS,
  'slurm-login': SLURM_LOGIN_CHECKS,
  'k3s-server': K3S_SERVER_CHECKS,
  'k3s-agent': K3S_AGENT_CHECKS,
};

/** Role names with readiness checks. */
export const ROLES_WITH_CHECKS: readonly string[] = [...Object.keys(FIXED), 'k3s'];

/** The roles to check: declared roles, then the ones implied by declared hardware, without duplicates. */
export function rolesToCheck(ctx: CheckContext): string[] {
  const roles = [...ctx.roles];
  if (ctx.hardware.gpu) roles.push('nvidia');
  if (ctx.hardware.infiniband) roles.push('infiniband');
  return [...new Set(roles)];
}

export function roleChecks(role: string, ctx: CheckContext): RoleChecks {
  if (role === 'k3s') {
    const k3sRole = k3sRoleOf(ctx.data);
    return { role: k3sRole, checks: [...FIXED[k3sRole]!] };
  }
  const checks = FIXED[role];
  if (!checks) return { role, checks: [], static: [passed(role, `${role}.no_checks`, '-', 'no checks', `rackseed declares no readiness checks for role "${role}"`)] };
  const staticEvidence = role === 'nvidia' ? nvidiaStaticEvidence(ctx) : role === 'infiniband' ? infinibandStaticEvidence(ctx) : [];
  return { role, checks: [...checks], ...(staticEvidence.length > 0 ? { static: staticEvidence } : {}) };
}

export function checksForNode(ctx: CheckContext): RoleChecks[] {
  const roles = rolesToCheck(ctx);
  // Said in the evidence, as for a role without checks: "ready" here means only that SSH answers.
  if (roles.length === 0) return [{ role: 'none', checks: [], static: [passed('none', 'roles.none', '-', 'no roles', `group "${ctx.group}" declares no roles and no hardware: only SSH was checked`)] }];
  return roles.map((r) => roleChecks(r, ctx));
}
