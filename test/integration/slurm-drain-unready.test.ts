/**
 * slurm.drain_unready against a real Slurm: a controller and two compute nodes (Debian 12 containers with systemd,
 * slurmctld and slurmd 22.05, converged by rackseed's own states; test/support/slurm-cluster.ts) and rackseed's
 * ReadinessService with the Slurm sync the server wires when the setting is on, reaching the controller over SSH.
 *
 * What it proves: a compute node whose readiness check fails (a broken /etc/hosts) is drained in slurmctld with the
 * failing check as the reason, and resumed once its checks pass again; a node an administrator drained keeps that
 * drain and its reason whatever its readiness says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';
import { ReadinessService, type NodeReadinessReport } from '../../server/services/readiness-service.js';
import { slurmHealthSync } from '../../server/services/slurm-health.js';
import { convergeFailures, SlurmLab } from '../support/slurm-cluster.js';
import { waitFor } from '../support/wait.js';

const CONTROLLER = 'slurmctl01';
const COMPUTES = ['compute01', 'compute02'];

let lab: SlurmLab;
let readiness: ReadinessService;

const ctl = (command: string): string => {
  const r = lab.target(CONTROLLER).sh(command);
  if (r.status !== 0) throw new Error(`${command}: ${r.stderr}`);
  return r.stdout.trim();
};
const nodeLine = (node: string): string => ctl(`scontrol show node -o ${node}`);
const check = (names: string[]): Promise<NodeReadinessReport[]> => readiness.run(names.map((n) => lab.node(n)));

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the Slurm lab needs root (network namespaces, overlay mounts, systemd-nspawn)');
  lab = await SlurmLab.start({ controller: CONTROLLER, computes: COMPUTES });
  const reports = await lab.converge([CONTROLLER, ...COMPUTES]);
  const failed = convergeFailures(reports);
  if (failed.length > 0) throw new Error(`convergence failed: ${failed.join('\n')}`);
  await waitFor('compute nodes idle', () => COMPUTES.every((n) => / State=IDLE /.test(nodeLine(n))), 60_000, 500);
  const log = createLogger('silent');
  readiness = new ReadinessService({
    inventory: lab.inventory,
    store: lab.store,
    settings: { concurrency: 4, commandTimeoutMs: 30_000, connectTimeoutMs: 10_000, sshPort: 22, slurmDrainUnready: true },
    log,
    transportFor: (node) => lab.transport(node.name),
    afterRun: slurmHealthSync({ inventory: () => lab.inventory.inventory, store: lab.store, transportFor: (node) => lab.transport(node.name), timeoutMs: 30_000, log }),
  });
  const first = await lab.checkReadiness([CONTROLLER, ...COMPUTES]);
  if (!first.every((r) => r.ready)) throw new Error(`not ready after convergence: ${first.map((r) => `${r.node}: ${r.summary}`).join('; ')}`);
}, 420_000);

afterAll(async () => {
  await lab?.stop();
}, 60_000);

describe('slurm.drain_unready through a real slurmctld', () => {
  it('drains a compute node whose checks fail, with the failing check as the reason; the healthy one is left alone', async () => {
    lab.target('compute01').sh('cp /etc/hosts /etc/hosts.good && sed -i "/compute02/d" /etc/hosts');
    const [c1, c2] = await check(COMPUTES);
    expect(c1).toMatchObject({ node: 'compute01', ready: false, failing: ['base.hosts'], state: 'failed' });
    expect(c2).toMatchObject({ node: 'compute02', ready: true });
    expect(nodeLine('compute01')).toMatch(/ State=IDLE\+DRAIN /);
    expect(nodeLine('compute01')).toMatch(/ Reason=rackseed readiness: base\.hosts \(\/etc\/hosts lacks \S+ compute02\)/);
    expect(nodeLine('compute02')).toMatch(/ State=IDLE /);
  }, 120_000);

  it("never touches a drain an administrator set, whatever the node's readiness says", async () => {
    ctl('scontrol update nodename=compute02 state=drain reason="bad DIMM, ticket 42"');
    lab.target('compute02').sh('cp /etc/hosts /etc/hosts.good && sed -i "/compute01/d" /etc/hosts');
    const [c2] = await check(['compute02']);
    expect(c2).toMatchObject({ ready: false });
    expect(c2?.failing.sort()).toEqual(['base.hosts', 'slurm.node_state']);
    expect(nodeLine('compute02')).toContain('Reason=bad DIMM, ticket 42');
  }, 120_000);

  it("resumes its own drain once the checks pass again, and still leaves the administrator's", async () => {
    for (const n of COMPUTES) lab.target(n).sh('mv /etc/hosts.good /etc/hosts');
    // Without its /etc/hosts entries a node's slurmd may miss a ping meanwhile (NOT_RESPONDING): Slurm's own recovery.
    await waitFor('slurmd answering on both', () => COMPUTES.every((n) => !/NOT_RESPONDING|State=\S*\*/.test(nodeLine(n))), 90_000, 500);
    const [c1, c2] = await check(COMPUTES);
    // The drain was rackseed's own: slurm.node_state passes (with a note), every other check passes, so it is lifted.
    expect(c1).toMatchObject({ node: 'compute01', ready: true, state: 'ready' });
    expect(nodeLine('compute01')).toMatch(/ State=IDLE[ +]/);
    expect(nodeLine('compute01')).not.toMatch(/DRAIN|Reason=/);
    expect(c2).toMatchObject({ node: 'compute02', ready: false, failing: ['slurm.node_state'] });
    expect(nodeLine('compute02')).toContain('Reason=bad DIMM, ticket 42');
    ctl('scontrol update nodename=compute02 state=resume');
  }, 120_000);
});
