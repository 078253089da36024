/**
 * The Slurm roles for real: a controller and two compute nodes, each a Debian 12 container with systemd as PID 1
 * (systemd-nspawn) on one bridge, converged by rackseed's StateService over SSH with the built-in states/ and the
 * role secrets (the munge key), then checked by its ReadinessService, all on a real SQLite store
 * (test/support/slurm-cluster.ts). Slurm is Debian 12's 22.05, installed by the roles' pkg states from an offline
 * apt repository in the containers (no network).
 *
 * What it proves: munge credentials made on one node decode on another (same key on every node, delivered by the
 * pillar); both compute nodes register with slurmctld and are idle in sinfo; readiness moves all three nodes to
 * ready with stored evidence; a node taken out of the compute role disappears from slurm.conf on the rest and from
 * the controller; a drained node fails readiness with Slurm's reason in its lifecycle status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mungeKey } from '../../server/services/role-secrets.js';
import type { NodeRunReport } from '../../server/services/state-service.js';
import { convergeFailures, SlurmLab } from '../support/slurm-cluster.js';
import { waitFor } from '../support/wait.js';

const CONTROLLER = 'slurmctl01';
const COMPUTES = ['compute01', 'compute02'];
const ALL = [CONTROLLER, ...COMPUTES];

let lab: SlurmLab;

const changed = (r: NodeRunReport): string[] => r.states.filter((s) => Object.keys(s.changes).length > 0).map((s) => s.id);

/** `sinfo` on the controller: node -> long state, e.g. { compute01: 'idle' }. */
function sinfoStates(): Record<string, string> {
  const r = lab.target(CONTROLLER).sh("sinfo -h -N -o '%N %T'");
  if (r.status !== 0) throw new Error(`sinfo failed: ${r.stderr}`);
  return Object.fromEntries(r.stdout.trim().split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/) as [string, string]));
}

function slurmLog(): string {
  const ctl = lab.target(CONTROLLER).sh('tail -n 40 /var/log/slurm/slurmctld.log').stdout;
  // The journal too: a slurmd that dies before it opens its log file says why only there.
  const computes = COMPUTES.map((n) => {
    const journal = lab.target(n).sh('journalctl -u slurmd -n 15 --no-pager -o short-precise 2>&1').stdout;
    return `--- ${n}\n${lab.target(n).sh('tail -n 20 /var/log/slurm/slurmd.log').stdout}--- ${n} journal\n${journal}`;
  }).join('\n');
  return `--- slurmctld\n${ctl}\n${computes}`;
}

async function waitUntilIdle(nodes: string[]): Promise<void> {
  await waitFor(`${nodes.join(', ')} idle in sinfo`, () => nodes.every((n) => sinfoStates()[n] === 'idle'), 60_000, 500).catch((error: Error) => {
    throw new Error(`${error.message}: sinfo says ${JSON.stringify(sinfoStates())}\n${slurmLog()}`);
  });
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the Slurm lab needs root (network namespaces, overlay mounts, systemd-nspawn)');
  lab = await SlurmLab.start({ controller: CONTROLLER, computes: COMPUTES });
}, 300_000);

afterAll(async () => {
  await lab?.stop();
}, 60_000);

describe('Slurm roles on a controller and two compute nodes', () => {
  it('converges all three nodes in one pass, and a second pass changes nothing', async () => {
    const first = await lab.converge(ALL);
    expect(convergeFailures(first)).toEqual([]);
    expect(first.map((r) => r.result)).toEqual(['changed', 'changed', 'changed']);
    for (const r of first) expect(changed(r)).toEqual(expect.arrayContaining(['munge', 'munge-key', '/etc/slurm/slurm.conf']));
    expect(changed(first.find((r) => r.node === CONTROLLER)!)).toEqual(expect.arrayContaining(['slurmctld-package', 'slurmctld']));
    for (const n of COMPUTES) expect(changed(first.find((r) => r.node === n)!)).toEqual(expect.arrayContaining(['slurmd-package', 'slurmd']));

    const second = await lab.converge(ALL);
    expect(convergeFailures(second)).toEqual([]);
    expect(second.map((r) => `${r.node}: ${changed(r).join(', ')}`)).toEqual(ALL.map((n) => `${n}: `));
  }, 300_000);

  it('gives every node the same slurm.conf, listing both compute nodes with their CPUs and memory', () => {
    const confs = ALL.map((n) => lab.target(n).sh('cat /etc/slurm/slurm.conf').stdout);
    expect(new Set(confs).size).toBe(1);
    const conf = confs[0]!;
    expect(conf).toContain(`SlurmctldHost=${CONTROLLER}(${lab.target(CONTROLLER).ip})`);
    for (const n of COMPUTES) {
      expect(conf).toMatch(new RegExp(`^NodeName=${n} NodeAddr=${lab.target(n).ip.replace(/\./g, '\\.')} CPUs=\\d+ RealMemory=\\d+ State=UNKNOWN$`, 'm'));
    }
    expect(conf).toMatch(/^PartitionName=compute Nodes=compute01,compute02 Default=YES/m);
    // What slurmctld reads only at start, in the file whose change restarts it: the controller and every node line.
    const restartList = lab.target(CONTROLLER).sh('cat /etc/slurm/rackseed-nodes').stdout;
    const startOnly = (text: string) => text.split('\n').filter((l) => /^(SlurmctldHost|NodeName)=/.test(l));
    expect(startOnly(restartList)).toEqual(startOnly(conf));
    expect(startOnly(conf)).toHaveLength(3);
  });

  it('munge: a credential made on one node decodes on every other node, with the key from the pillar', () => {
    const key = lab.target(CONTROLLER).sh('base64 -w0 /etc/munge/munge.key').stdout;
    expect(key).toBe(mungeKey(lab.dataDir));
    for (const [from, to] of [
      ['compute01', CONTROLLER],
      [CONTROLLER, 'compute02'],
      ['compute02', 'compute01'],
    ] as const) {
      const made = lab.target(from).sh('munge -n');
      expect(made.status, made.stderr).toBe(0);
      const credential = made.stdout.trim();
      expect(credential).toMatch(/^MUNGE:[A-Za-z0-9+/=]+:$/);
      const decoded = lab.target(to).sh(`printf '%s' '${credential}' | unmunge`);
      expect(decoded.stderr).toBe('');
      expect(decoded.stdout).toMatch(/^STATUS:\s+Success \(0\)$/m);
      expect(decoded.stdout).toMatch(new RegExp(`^ENCODE_HOST:\\s+${from}\\b`, 'm'));
    }
    // A credential with a foreign key is refused: the check above is not vacuous.
    const foreign = lab.target('compute01').sh(
      'head -c 1024 /dev/urandom > /tmp/other.key && chmod 0400 /tmp/other.key && chown munge:munge /tmp/other.key && ' +
        'mkdir -p /tmp/m2 && chown munge:munge /tmp/m2 && ' +
        'runuser -u munge -- munged --key-file=/tmp/other.key --socket=/tmp/m2/sock --pid-file=/tmp/m2/pid --log-file=/tmp/m2/log --seed-file=/tmp/m2/seed && ' +
        'munge -S /tmp/m2/sock -n; kill "$(cat /tmp/m2/pid)"',
    );
    expect(foreign.status, foreign.stderr).toBe(0);
    const refused = lab.target(CONTROLLER).sh(`printf '%s' '${foreign.stdout.trim()}' | unmunge`);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/Invalid credential|Failed to decrypt/i);
  });

  it('both compute nodes register with slurmctld and are idle in sinfo', async () => {
    await waitUntilIdle(COMPUTES);
    expect(sinfoStates()).toEqual({ compute01: 'idle', compute02: 'idle' });
  });

  it('readiness marks the controller and both compute nodes ready, with stored evidence', async () => {
    const reports = await lab.checkReadiness(ALL);
    expect(reports.map((r) => `${r.node}: ${r.ready ? 'ready' : r.summary}`)).toEqual(ALL.map((n) => `${n}: ready`));
    expect(reports.map((r) => r.state)).toEqual(['ready', 'ready', 'ready']);
    for (const n of ALL) expect((await lab.store.getNode(n))?.state).toBe('ready');

    const stored = await lab.readiness.last(ALL.map((n) => lab.node(n)));
    const evidence = (n: string) => stored.find((s) => s.node === n)!.run!.evidence;
    expect(evidence(CONTROLLER)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ check: 'slurm.slurmctld', pass: true, seen: 'active' }),
        expect.objectContaining({ check: 'slurm.ping', pass: true, seen: `primary ${CONTROLLER} UP` }),
      ]),
    );
    for (const n of COMPUTES) {
      expect(stored.find((s) => s.node === n)!.run!.ready).toBe(true);
      expect(evidence(n)).toEqual(expect.arrayContaining([expect.objectContaining({ check: 'slurm.node_state', pass: true, seen: 'IDLE' })]));
      expect(evidence(n)).toEqual(expect.arrayContaining([expect.objectContaining({ check: 'base.hosts', pass: true })]));
    }
  }, 120_000);

  it('a node taken out of the compute role leaves slurm.conf on the rest and the controller', async () => {
    await lab.setComputeMembers(['compute01']);
    const reports = await lab.converge([CONTROLLER, 'compute01', 'compute02']);
    expect(convergeFailures(reports)).toEqual([]);
    // compute02 lost the role: its slurmd is stopped and disabled (it stayed up, idle in sinfo, before).
    expect(changed(reports.find((r) => r.node === 'compute02')!)).toContain('rackseed-role-gone-slurmd');
    expect(lab.target('compute02').sh('systemctl is-active slurmd; systemctl is-enabled slurmd').stdout).toBe('inactive\ndisabled\n');
    const ctl = reports.find((r) => r.node === CONTROLLER)!;
    // The node list changed: slurmctld restarted (watch on rackseed-nodes), then reconfigured.
    expect(changed(ctl)).toEqual(expect.arrayContaining(['/etc/slurm/slurm.conf', '/etc/slurm/rackseed-nodes', 'slurmctld', 'slurm-reconfigure']));
    expect(changed(reports.find((r) => r.node === 'compute01')!)).toEqual(expect.arrayContaining(['/etc/slurm/slurm.conf', 'slurmd']));

    for (const n of [CONTROLLER, 'compute01']) {
      const conf = lab.target(n).sh('cat /etc/slurm/slurm.conf').stdout;
      expect(conf).toMatch(/^NodeName=compute01 /m);
      expect(conf).not.toContain('compute02');
      expect(conf).toMatch(/^PartitionName=compute Nodes=compute01 Default=YES/m);
    }
    const shown = lab.target(CONTROLLER).sh('scontrol show node compute02');
    expect(shown.status).not.toBe(0);
    expect(`${shown.stdout}${shown.stderr}`).toMatch(/compute02 not found/i);
    await waitUntilIdle(['compute01']);
    expect(sinfoStates()).toEqual({ compute01: 'idle' });

    // compute02 is no Slurm node for readiness either; compute01 and the controller stay ready.
    const again = await lab.checkReadiness([CONTROLLER, 'compute01', 'compute02']);
    expect(again.map((r) => `${r.node}: ${r.ready ? 'ready' : r.summary}`)).toEqual([`${CONTROLLER}: ready`, 'compute01: ready', 'compute02: ready']);
    expect(again.find((r) => r.node === 'compute02')!.evidence.map((e) => e.check)).not.toContain('slurm.node_state');
  }, 300_000);

  it('a drained compute node fails readiness with the Slurm reason in its lifecycle status', async () => {
    const drain = lab.target(CONTROLLER).sh('scontrol update nodename=compute01 state=drain reason="rackseed test drain"');
    expect(drain.status, drain.stderr).toBe(0);
    const [report] = await lab.checkReadiness(['compute01']);
    expect(report!.ready).toBe(false);
    expect(report!.failing).toEqual(['slurm.node_state']);
    expect(report!.state).toBe('failed');
    const status = await lab.store.getNode('compute01');
    expect(status?.state).toBe('failed');
    expect(status?.reason).toContain('rackseed test drain');
    expect(status?.reason).toMatch(/drain/i);
    expect(status?.stage).toBe('readiness');

    // Back in service: readiness turns it ready again.
    expect(lab.target(CONTROLLER).sh('scontrol update nodename=compute01 state=resume').status).toBe(0);
    await waitUntilIdle(['compute01']);
    const [back] = await lab.checkReadiness(['compute01']);
    expect(back!.summary).toBe('');
    expect(back!.ready).toBe(true);
    expect((await lab.store.getNode('compute01'))?.state).toBe('ready');
  }, 120_000);

  it('a node put back into the compute role rejoins: slurm.conf everywhere, slurmctld restarted, idle and ready', async () => {
    await lab.setComputeMembers(COMPUTES);
    const reports = await lab.converge(ALL);
    expect(convergeFailures(reports)).toEqual([]);
    expect(changed(reports.find((r) => r.node === CONTROLLER)!)).toEqual(expect.arrayContaining(['/etc/slurm/rackseed-nodes', 'slurmctld']));
    expect(changed(reports.find((r) => r.node === 'compute01')!)).toEqual(['/etc/slurm/slurm.conf', 'slurmd']);
    // compute02 was converged while it was out (slurmd stopped, its slurm.conf left as it was): slurmd starts again,
    // with a slurm.conf that lists both nodes, which is right again.
    expect(changed(reports.find((r) => r.node === 'compute02')!)).toEqual(['slurmd']);
    expect(new Set(ALL.map((n) => lab.target(n).sh('cat /etc/slurm/slurm.conf').stdout)).size).toBe(1);
    await waitUntilIdle(COMPUTES);
    const ready = await lab.checkReadiness(ALL);
    expect(ready.map((r) => `${r.node}: ${r.ready ? r.state : r.summary}`)).toEqual(ALL.map((n) => `${n}: ready`));
  }, 300_000);

  it('a node whose CPU count changes restarts slurmctld (reconfigure refuses that change), and Slurm sees the new count', async () => {
    // What the controller thinks compute02 has: CPUTot from `scontrol show node`.
    const cpuTot = (): number => Number(/CPUTot=(\d+)/.exec(lab.target(CONTROLLER).sh('scontrol show node compute02').stdout)?.[1]);
    const before = cpuTot();
    expect(before).toBeGreaterThan(1);
    // Fewer CPUs as the facts see them: sshd (and so every command a run sends) pinned to CPU 0, where nproc says 1.
    const pin = (mask: string) => lab.target('compute02').sh(`taskset -p ${mask} "$(systemctl show -p MainPID --value ssh)"`);
    expect(pin('1').status).toBe(0);
    try {
      const reports = await lab.converge(ALL);
      expect(convergeFailures(reports)).toEqual([]);
      expect(lab.target(CONTROLLER).sh('grep ^NodeName=compute02 /etc/slurm/slurm.conf').stdout).toMatch(/ CPUs=1 /);
      await waitFor('slurmctld to see compute02 with 1 CPU', () => cpuTot() === 1, 30_000, 500);
      // A plain `scontrol reconfigure` is refused for this change (its retry then half-applies it): never rely on it.
      expect(lab.target(CONTROLLER).sh('grep -c "require restart of the slurmctld daemon" /var/log/slurm/slurmctld.log').stdout.trim()).toBe('0');
      expect(changed(reports.find((r) => r.node === CONTROLLER)!)).toEqual(expect.arrayContaining(['/etc/slurm/rackseed-nodes', 'slurmctld']));
    } finally {
      expect(pin(((1 << before) - 1).toString(16)).status).toBe(0);
    }
    const restored = await lab.converge(ALL);
    expect(convergeFailures(restored)).toEqual([]);
    await waitFor(`slurmctld to see compute02 with ${before} CPUs`, () => cpuTot() === before, 30_000, 500);
    // Slurm's own rule, not the role's: while the nodes converge at once, a slurmd may register with a definition
    // the controller does not have yet, and slurmctld drains it ("Low socket*core*thread count"). Such a drain
    // stays until an operator resumes the node (readiness reports it failed meanwhile).
    const reason = lab.target(CONTROLLER).sh("sinfo -h -n compute02 -o '%E'").stdout.trim();
    if (reason !== 'none') {
      expect(reason).toMatch(/^Low /);
      expect(lab.target(CONTROLLER).sh('scontrol update nodename=compute02 state=resume').status).toBe(0);
    }
    await waitUntilIdle(COMPUTES);
  }, 300_000);
});
