import { k3sData, type K3sRole } from '../../model/k3s-role.js';
import { shellQuote } from '../../state/modules/shell.js';
import type { ExecResult } from '../../state/types.js';
import { parseKubectlNode } from '../parsers/kubectl.js';
import type { CheckContext, CheckSpec, Evidence } from '../types.js';
import { commandFailed, failed, listSome, passed } from './evidence.js';

/**
 * k3s-server / k3s-agent: the node is Ready in the cluster's view and carries the labels the k3s states give it
 * (see expectedK3sLabels), plus the control-plane label on a server.
 * The node asks about itself: a server through its admin kubeconfig, an agent through its kubelet's, which the
 * API server lets read its own Node object.
 */

export { k3sRoleOf, type K3sRole } from '../../model/k3s-role.js';

/**
 * The labels the k3s states put on the node (states/k3s/files/macros.njk): rackseed.io/group, the GPU presence and
 * count when the node has GPUs, then data k3s.labels (a mapping or a list of "key=value"); k3s itself adds the
 * control-plane label on a server. (rackseed.io/gpu-model is left out: its value comes from a template table.)
 */
export function expectedK3sLabels(ctx: CheckContext, role: K3sRole): Record<string, string> {
  const labels: Record<string, string> = { 'rackseed.io/group': ctx.group };
  if (ctx.facts.gpus.length > 0) {
    labels['nvidia.com/gpu.present'] = 'true';
    labels['rackseed.io/gpu-count'] = String(ctx.facts.gpus.length);
  }
  const declared = k3sData(ctx.data)['labels'];
  if (Array.isArray(declared)) {
    for (const item of declared) {
      const [k, ...v] = String(item).split('=');
      if (k) labels[k] = v.join('=');
    }
  } else if (declared && typeof declared === 'object') for (const [k, v] of Object.entries(declared)) labels[k] = String(v);
  if (role === 'k3s-server') labels['node-role.kubernetes.io/control-plane'] = 'true';
  return labels;
}

/** PURE: `kubectl get node NAME -o json`. */
export function evaluateK3sNode(output: ExecResult, ctx: CheckContext, role: K3sRole): Evidence[] {
  if (output.code !== 0) {
    // The API server's answer for a missing node, not a shell's "kubectl: not found" (a missing binary).
    if (/\(NotFound\): nodes "[^"]+" not found/.test(output.stderr)) return [failed(role, 'k3s.node_ready', 'Ready=True', 'not registered', `the cluster has no node ${ctx.node}`)];
    return [commandFailed(role, 'k3s.node_ready', 'Ready=True', 'kubectl get node', output)];
  }
  let node;
  try {
    node = parseKubectlNode(output.stdout);
  } catch (err) {
    return [failed(role, 'k3s.node_ready', 'Ready=True', 'unreadable output', `kubectl printed no Node JSON: ${(err as Error).message}`)];
  }
  const out: Evidence[] = [];
  const seen = `Ready=${node.ready ?? 'absent'}${node.unschedulable ? ', cordoned' : ''}`;
  if (node.ready === 'True' && !node.unschedulable) out.push(passed(role, 'k3s.node_ready', 'Ready=True', seen));
  else {
    const why = node.ready !== 'True' ? `node ${ctx.node} is not Ready${node.readyReason ? ` (${node.readyReason}${node.readyMessage ? `: ${node.readyMessage}` : ''})` : ''}` : `node ${ctx.node} is cordoned (unschedulable)`;
    out.push(failed(role, 'k3s.node_ready', 'Ready=True', seen, why));
  }
  const expected = expectedK3sLabels(ctx, role);
  const wanted = Object.entries(expected);
  const wrong = wanted.filter(([k, v]) => node.labels[k] !== v);
  const expectedText = wanted.length === 0 ? 'no labels declared' : listSome(wanted.map(([k, v]) => `${k}=${v}`), 4);
  out.push(
    wrong.length === 0
      ? passed(role, 'k3s.labels', expectedText, `${wanted.length} of ${wanted.length} present`)
      : failed(role, 'k3s.labels', expectedText, `${wanted.length - wrong.length} of ${wanted.length} present`,
          listSome(wrong.map(([k, v]) => (node.labels[k] === undefined ? `${k}=${v} missing` : `${k} is "${node.labels[k]}", expected "${v}"`)))),
  );
  return out;
}

const KUBECONFIG_PICK =
  'if [ -r /etc/rancher/k3s/k3s.yaml ]; then kc=/etc/rancher/k3s/k3s.yaml; else kc=/var/lib/rancher/k3s/agent/kubelet.kubeconfig; fi';

function nodeCheck(role: K3sRole): CheckSpec {
  return {
    id: 'k3s.node',
    role,
    command: (ctx) => `${KUBECONFIG_PICK}; k3s kubectl --kubeconfig "$kc" get node ${shellQuote(ctx.node.toLowerCase())} -o json`,
    evaluate: (output, ctx) => evaluateK3sNode(output, ctx, role),
  };
}

export const K3S_SERVER_CHECKS: readonly CheckSpec[] = [nodeCheck('k3s-server')];
export const K3S_AGENT_CHECKS: readonly CheckSpec[] = [nodeCheck('k3s-agent')];
