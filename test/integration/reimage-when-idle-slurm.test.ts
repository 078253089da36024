/**
 * `rackseed reimage --when-idle` against a real Slurm: a controller and two compute nodes (Debian 12 containers with
 * systemd, slurmctld and slurmd 22.05, converged by rackseed's own states; test/support/slurm-cluster.ts), the fleet
 * routes reaching the controller over SSH, the CLI as an operator runs it.
 *
 * What it proves: with jobs running, the nodes are marked and drained but not rebooted (the jobs run on, nothing is
 * sent over SSH or to a BMC); Slurm runs the node's RebootProgram (states/slurm: rackseed-slurm-reboot, here with a
 * pillar reboot_command that leaves a mark instead of rebooting the container) only once its job is done; a
 * `reimage --cancel` withdraws the Slurm reboot and lifts the drain as well as the mark.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';
import { requireAdminToken } from '../../server/net/http/auth.js';
import { errorHandler, notFoundHandler } from '../../server/net/http/errors.js';
import { fleetRoutes } from '../../server/net/http/fleet-routes.js';
import { cliAgainst } from '../support/cli.js';
import { convergeFailures, SlurmLab } from '../support/slurm-cluster.js';
import { waitFor } from '../support/wait.js';

const CONTROLLER = 'slurmctl01';
const COMPUTES = ['compute01', 'compute02'];
const TOKEN = 'when-idle-test-token-0123456789abcdef';
/** What each compute node's RebootProgram does here: the containers must stay up. */
const REBOOTED_MARK = '/run/rackseed-reboot-requested';

let lab: SlurmLab;
let api: Server;
let httpUrl: string;
const sshReboots: string[] = [];
const jobs = new Map<string, string>();

const ctl = (command: string): string => {
  const r = lab.target(CONTROLLER).sh(command);
  if (r.status !== 0) throw new Error(`${command}: ${r.stderr}`);
  return r.stdout.trim();
};
const nodeLine = (node: string): string => ctl(`scontrol show node -o ${node}`);
const rebooted = (node: string): boolean => lab.target(node).sh(`test -e ${REBOOTED_MARK}`).status === 0;
const pending = async (): Promise<string[]> => (await lab.store.listNodes()).filter((s) => s.reimageRequested).map((s) => s.id).sort();
const cli = (...args: string[]) => cliAgainst({ httpUrl, adminToken: TOKEN }, args);

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the Slurm lab needs root (network namespaces, overlay mounts, systemd-nspawn)');
  lab = await SlurmLab.start({ controller: CONTROLLER, computes: COMPUTES });
  const nodesDir = path.join(lab.work, 'pillar', 'nodes');
  mkdirSync(nodesDir, { recursive: true, mode: 0o700 });
  for (const node of COMPUTES) {
    const file = path.join(nodesDir, `${node}.yaml`);
    writeFileSync(file, `slurm:\n  reboot_command: date > ${REBOOTED_MARK}\n`);
    chmodSync(file, 0o600);
  }
  const reports = await lab.converge([CONTROLLER, ...COMPUTES]);
  const failed = convergeFailures(reports);
  if (failed.length > 0) throw new Error(`convergence failed: ${failed.join('\n')}`);
  await waitFor('compute nodes idle in sinfo', () => COMPUTES.every((n) => / State=IDLE /.test(nodeLine(n))), 60_000, 500);

  const app = express();
  app.use(
    '/api/v1',
    requireAdminToken(TOKEN),
    fleetRoutes({
      inventory: lab.inventory,
      store: lab.store,
      dataDir: lab.dataDir,
      log: createLogger('silent'),
      transportFor: (node) => lab.transport(node.name),
      sshReboot: async (node) => {
        sshReboots.push(node);
      },
    }),
  );
  app.use(notFoundHandler());
  app.use(errorHandler(createLogger('silent')));
  api = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  httpUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
}, 420_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (api ? api.close(() => resolve()) : resolve()));
  await lab?.stop();
}, 60_000);

describe('reimage --when-idle through a real slurmctld', () => {
  it('writes the reboot program into slurm.conf and each compute node, with a reboot timeout long enough for a reinstall', () => {
    const conf = lab.target('compute01').sh('cat /etc/slurm/slurm.conf').stdout;
    expect(conf).toMatch(/^RebootProgram=\/usr\/local\/sbin\/rackseed-slurm-reboot$/m);
    expect(conf).toMatch(/^ResumeTimeout=1800$/m);
    const script = lab.target('compute01').sh('stat -c %a /usr/local/sbin/rackseed-slurm-reboot && cat /usr/local/sbin/rackseed-slurm-reboot').stdout;
    expect(script).toMatch(/^755\n#!\/bin\/sh\n/);
    expect(script).toContain(`date > ${REBOOTED_MARK}`);
  });

  it('marks and drains busy nodes but reboots none of them while their jobs run', async () => {
    for (const node of COMPUTES) {
      jobs.set(node, ctl(`sbatch --parsable -w ${node} -o /dev/null --wrap 'sleep 600'`));
    }
    await waitFor('both jobs running', () => [...jobs.values()].every((id) => ctl(`squeue -h -j ${id} -o %T`) === 'RUNNING'), 60_000, 500);

    const dry = await cli('reimage', 'compute[01-02]', '--when-idle');
    expect(dry).toMatch(/compute01 .* slurm, when idle/);
    expect(dry).toContain('2 by Slurm once their jobs are done');
    expect(await pending()).toEqual([]);

    const out = await cli('reimage', 'compute[01-02]', '--when-idle', '--yes');
    expect(out).toMatch(/rebooted by Slurm when idle\s+2/);
    expect(out).toMatch(/compute01\s*│\s*draining\S*\s*│\s*when its jobs are done/);
    expect(await pending()).toEqual(COMPUTES);
    for (const node of COMPUTES) {
      const line = nodeLine(node);
      expect(line).toMatch(/State=\S*DRAIN\S*REBOOT_REQUESTED/);
      expect(line).toContain('Reason=rackseed reimage');
      expect(line).toContain('NextState=RESUME');
      expect(rebooted(node)).toBe(false);
    }
    expect([...jobs.values()].map((id) => ctl(`squeue -h -j ${id} -o %T`))).toEqual(['RUNNING', 'RUNNING']);
    expect(sshReboots).toEqual([]);
  }, 120_000);

  it('a cancel withdraws the Slurm reboot and lifts the drain along with the mark', async () => {
    const out = await cli('reimage', '--cancel', 'compute02');
    expect(out).toContain('withdrew the Slurm reboot (and its drain) of 1 node(s)');
    expect(await pending()).toEqual(['compute01']);
    const line = nodeLine('compute02');
    expect(line).not.toMatch(/DRAIN|REBOOT/);
    expect(ctl(`squeue -h -j ${jobs.get('compute02')!} -o %T`)).toBe('RUNNING');
    // compute01's request stands.
    expect(nodeLine('compute01')).toMatch(/REBOOT_REQUESTED/);
  }, 60_000);

  it('Slurm runs the reboot program once the job is done', async () => {
    ctl(`scancel ${jobs.get('compute01')!}`);
    await waitFor('compute01 rebooted by Slurm', () => rebooted('compute01'), 90_000, 500);
    expect(nodeLine('compute01')).toMatch(/REBOOT_ISSUED/);
    // compute02's reboot was withdrawn: when its job ends nothing is left to run.
    ctl(`scancel ${jobs.get('compute02')!}`);
    await waitFor('compute02 idle again', () => / State=IDLE /.test(nodeLine('compute02')), 60_000, 500);
    expect(nodeLine('compute02')).not.toMatch(/REBOOT/);
    expect(sshReboots).toEqual([]);
  }, 120_000);

  it("leaves a node an administrator drained alone: its reason is not replaced and Slurm gets no reboot for it", async () => {
    ctl('scontrol update nodename=compute02 state=drain reason="bad DIMM, ticket 42"');
    const res = await fetch(`${httpUrl}/api/v1/reimage`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ targets: ['compute02'], whenIdle: true, confirm: true }),
    });
    const result = (await res.json()) as { summary: { reboots: Array<{ node: string; method: string; ok: boolean; error?: string }> } };
    expect(result.summary.reboots).toEqual([
      { node: 'compute02', method: 'slurm', ok: false, error: expect.stringMatching(/^Slurm did not take the reboot: held by an administrator \(Reason=bad DIMM, ticket 42 \[root@[^\]]+\]\): --when-idle would replace that reason/) },
    ]);
    const line = nodeLine('compute02');
    expect(line).toContain('Reason=bad DIMM, ticket 42');
    expect(line).not.toMatch(/REBOOT/);
    // The mark stays until a reimage without --when-idle or a cancel; the cancel finds no Slurm reboot of rackseed's.
    expect(await pending()).toEqual(['compute01', 'compute02']);
    const cancel = await cli('reimage', '--cancel', 'compute02');
    expect(cancel).not.toContain('withdrew the Slurm reboot');
    expect(nodeLine('compute02')).toContain('Reason=bad DIMM, ticket 42');
    ctl('scontrol update nodename=compute02 state=resume');
  }, 60_000);
});
