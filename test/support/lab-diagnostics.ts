import type { RunningLab } from '../../server/lab/lab.js';
import type { StoredReadiness } from '../../server/services/readiness-service.js';
import type { NodeView } from '../../server/services/node-view.js';

/**
 * When the lab does not turn ready, what an engineer needs to see without re-running it: every machine's lifecycle
 * state and reason, the failing readiness evidence, and from the Slurm nodes (over SSH with the pinned host key)
 * the daemons' state and the ends of their logs.
 */
export async function labDiagnostics(lab: RunningLab): Promise<string> {
  const out: string[] = [];
  try {
    const { nodes } = await lab.api.get<{ nodes: NodeView[] }>('/nodes');
    for (const v of nodes) out.push(`${v.name}: ${v.state}${v.stage ? ` stage=${v.stage}` : ''}${v.reason ? ` reason=${v.reason}` : ''}`);
    const { nodes: ready } = await lab.api.get<{ nodes: StoredReadiness[] }>('/readiness');
    for (const r of ready) {
      const failing = r.run?.evidence.filter((e) => !e.pass) ?? [];
      if (failing.length) out.push(`${r.node} failing evidence: ${failing.map((e) => `${e.check} expected ${e.expected}, saw ${e.seen}${e.reason ? ` (${e.reason})` : ''}`).join('; ')}`);
    }
  } catch (err) {
    out.push(`the lab API did not answer: ${(err as Error).message}`);
  }
  for (const m of lab.machines) {
    const unit = m.group === 'head' ? 'slurmctld' : 'slurmd';
    const r = lab.ssh(m.name, `systemctl is-active munge ${unit}; tail -n 30 /var/log/slurm/${unit}.log 2>&1; journalctl -u ${unit} -n 20 --no-pager 2>&1`);
    out.push(`--- ${m.name} (ssh exit ${r.status}) ---\n${r.stdout}${r.stderr}`);
  }
  out.push(`--- server log tail ---\n${lab.server.log().split('\n').slice(-40).join('\n')}`);
  return out.join('\n');
}
