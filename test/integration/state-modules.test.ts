/**
 * The state modules against real systems: two Debian 12 root file systems (debootstrap, cached) entered over a real
 * sshd in their own network namespaces (test/support/ssh-target.ts), driven by the real StateService (facts,
 * top.sls, pillar files, compile, run, SQLite store) with the SLS tree in test/fixtures/sls-real/modules.
 *
 * For every module the same cycle: a dry run predicts, apply changes exactly the states the dry run named (with the
 * same changes where they can be known in advance), the node is inspected without SSH (nsenter), and a second apply
 * changes nothing while a second dry run predicts nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InventoryService } from '../../server/services/inventory-service.js';
import { StateService, type NodeRunReport } from '../../server/services/state-service.js';
import { openSshTransport } from '../../server/state/transport/ssh.js';
import type { StateResult } from '../../server/state/types.js';
import type { ObservedStore } from '../../server/store/types.js';
import { runProblems, startDemoStates, type DemoStates } from '../support/demo-states.js';
import { startSshTargets, type SshTarget, type SshTargets } from '../support/ssh-target.js';

let lab: SshTargets;
let targets: SshTarget[];
let demo: DemoStates;
let store: ObservedStore;
let inventory: InventoryService;
let states: StateService;

/** The states every node gets, by ID, that change a fresh target (gpu-only never runs: its onlyif is false). */
const FIRST_RUN_CHANGES = [
  'tree',
  'json-tools',
  'hello',
  'demo-group',
  'demo-user',
  'demo-dir',
  'app-config',
  'motd',
  'current-link',
  'local-hosts',
  'cluster-hosts',
  'obsolete-config',
  'swappiness',
  'forwarding',
  'dummy-module',
  'state-dir',
  'initialise',
  'seed-log',
  'reload-app',
];

const byNode = (reports: NodeRunReport[]): Map<string, NodeRunReport> => new Map(reports.map((r) => [r.node, r]));
/** Test mode: the states that would change (result null). */
const predicted = (r: NodeRunReport): Map<string, StateResult> => new Map(r.states.filter((s) => s.result === null).map((s) => [s.id, s]));
/** Apply mode: the states that changed something. */
const changed = (r: NodeRunReport): Map<string, StateResult> => new Map(r.states.filter((s) => s.result === true && Object.keys(s.changes).length > 0).map((s) => [s.id, s]));

async function run(mode: 'apply' | 'test'): Promise<Map<string, NodeRunReport>> {
  const reports = await states.run([...inventory.inventory.nodes.values()], mode);
  expect(runProblems(reports)).toEqual([]);
  return byNode(reports);
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('SSH targets need root (network namespaces, overlay mounts, chroot)');
  lab = await startSshTargets(2);
  targets = lab.targets;
  demo = await startDemoStates(targets, {
    prefix: 'rackseed-state-modules-',
    macByte: '20',
    concurrency: 2,
    transportFor: async (t) => openSshTransport({ target: t.name, host: t.host, port: t.port, privateKey: t.privateKey, knownHostKey: t.hostKeyLine, connectTimeoutMs: 10_000 }),
  });
  ({ store, inventory, states } = demo);
  // What a node brings with it: a package that has to go and a file that has to go.
  for (const t of targets) {
    const r = t.sh('DEBIAN_FRONTEND=noninteractive apt-get install -y -q hello >/dev/null && mkdir -p /etc/rackseed-demo && echo stale > /etc/rackseed-demo/obsolete.conf');
    if (r.status !== 0) throw new Error(`preparing ${t.name} failed: ${r.stderr}`);
  }
}, 300_000);

afterAll(async () => {
  await demo?.close();
  await lab?.stop();
});

describe('state modules on real Debian targets', () => {
  let dryRun: Map<string, NodeRunReport>;

  it('a dry run predicts every change and touches nothing', async () => {
    dryRun = await run('test');
    for (const t of targets) {
      const report = dryRun.get(t.name)!;
      expect(report.result).toBe('changed');
      expect([...predicted(report).keys()].sort()).toEqual([...FIRST_RUN_CHANGES].sort());
      expect(report.states.find((s) => s.id === 'gpu-only')).toMatchObject({ result: true, changes: {}, comment: 'onlyif condition is false: test -e /dev/nvidia0' });
      const p = predicted(report);
      expect(p.get('tree')!.changes).toEqual({ tree: { old: '', new: 'latest' } });
      expect(p.get('json-tools')!.changes).toEqual({ jq: { old: '', new: 'latest', hold: { old: false, new: true } } });
      expect(p.get('forwarding')!.changes).toEqual({ 'net.ipv4.ip_forward': '1' });
      expect(p.get('forwarding')!.comment).toBe('Sysctl net.ipv4.ip_forward would be set (now 0) and persisted in /etc/sysctl.d/60-rackseed-demo.conf');
      expect(p.get('hello')!.changes).toEqual({ hello: { old: expect.stringMatching(/^\d/), new: '' } });
      expect(p.get('demo-user')!.changes).toEqual({ name: 'rsdemo', uid: 4242, gid: 'rsdemo', home: '/home/rsdemo', shell: '/bin/bash', fullname: 'Rackseed Demo', groups: ['users'] });
      // As in Salt, a file that does not exist yet has no diff.
      expect(p.get('app-config')!.changes).toEqual({ diff: 'New file', mode: '0640', user: 'root', group: 'rsdemo' });
      // The onchanges chain is predicted from the predicted change of its file.
      expect(p.get('reload-app')!.comment).toMatch(/would have been executed/);
      // Nothing happened on the node.
      expect(t.sh('dpkg -s tree').status).not.toBe(0);
      expect(t.sh('dpkg -s hello').status).toBe(0);
      expect(t.sh('getent passwd rsdemo').status).not.toBe(0);
      expect(t.sh('ls /etc/rackseed-demo; test -e /var/lib/rackseed-demo || echo no-state-dir').stdout).toBe('obsolete.conf\nno-state-dir\n');
    }
  });

  it('apply changes exactly what the dry run predicted, and the node shows it', async () => {
    const applied = await run('apply');
    for (const t of targets) {
      const report = applied.get(t.name)!;
      const p = predicted(dryRun.get(t.name)!);
      const c = changed(report);
      expect(report.result).toBe('changed');
      expect([...c.keys()].sort()).toEqual([...p.keys()].sort());
      for (const [id, was] of p) {
        const now = c.get(id)!;
        if (now.module === 'cmd') {
          expect(now.changes).toMatchObject({ retcode: 0, stderr: '' });
        } else if (now.module === 'pkg' && now.fun === 'installed') {
          // The dry run cannot know the version apt will pick; the package and its old version it does know.
          expect(Object.keys(now.changes)).toEqual(Object.keys(was.changes));
          const [name] = Object.keys(now.changes);
          expect(now.changes[name!]).toEqual({ ...(was.changes[name!] as object), new: t.sh(`dpkg-query -W -f='\${Version}' ${name}`).stdout });
        } else if (now.fun === 'blockreplace') {
          // Its file is created by the state it requires, so the dry run diffed against an empty file: the block is
          // what both diffs add.
          for (const x of targets) {
            expect(was.changes['diff']).toContain(`+${x.ip} ${x.name}`);
            expect(now.changes['diff']).toContain(`+${x.ip} ${x.name}`);
          }
          expect(now.changes['diff']).toContain(' # local additions below are kept');
        } else {
          // Files (the diff included), accounts, sysctl, kmod: the prediction is the change.
          expect({ id, changes: now.changes }).toEqual({ id, changes: was.changes });
        }
      }

      expect(t.sh('dpkg -s tree | grep ^Status').stdout).toBe('Status: install ok installed\n');
      expect(t.sh('dpkg -s jq | grep ^Status; apt-mark showhold').stdout).toBe('Status: hold ok installed\njq\n');
      expect(t.sh('dpkg -s hello 2>/dev/null | grep ^Status || echo gone').stdout).not.toMatch(/ installed\n/);
      expect(t.sh('getent passwd rsdemo; getent group rsdemo; id -Gn rsdemo').stdout).toBe(
        'rsdemo:x:4242:4242:Rackseed Demo:/home/rsdemo:/bin/bash\nrsdemo:x:4242:\nrsdemo users\n',
      );
      expect(t.sh('stat -c "%a %U %G %F" /etc/rackseed-demo /etc/rackseed-demo/app.conf /etc/motd').stdout).toBe(
        '750 root rsdemo directory\n640 root rsdemo regular file\n644 root root regular file\n',
      );
      expect(t.sh('cat /etc/rackseed-demo/app.conf').stdout).toBe(`# Managed by rackseed\nnode = ${t.name}\nlisten = ${t.ip}:8080\nworkers = 4\n`);
      expect(t.sh('cat /etc/motd').stdout).toBe(`Welcome to ${t.name} (debian 12, group demo)\nCluster lab: ${targets.map((x) => x.name).join(', ')}\n`);
      expect(t.sh('readlink /etc/rackseed-demo/current').stdout).toBe('app.conf\n');
      expect(t.sh('cat /etc/rackseed-demo/hosts.local').stdout).toBe(
        ['# local additions below are kept', '# BEGIN rackseed cluster', ...targets.map((x) => `${x.ip} ${x.name}`), '# END rackseed cluster', ''].join('\n'),
      );
      expect(t.sh('test -e /etc/rackseed-demo/obsolete.conf || echo removed').stdout).toBe('removed\n');
      expect(t.sh('cat /etc/sysctl.d/60-rackseed-demo.conf /etc/modules-load.d/dummy.conf').stdout).toBe('vm.swappiness = 10\nnet.ipv4.ip_forward = 1\ndummy\n');
      expect(t.sh('sysctl -n net.ipv4.ip_forward').stdout).toBe('1\n');
      expect(t.sh('cat /var/lib/rackseed-demo/seed.log; cmp /etc/rackseed-demo/app.conf /var/lib/rackseed-demo/app.conf.loaded && echo loaded').stdout).toBe('seeded\nloaded\n');
      expect(t.sh('test -e /var/lib/rackseed-demo/gpu-tuned || echo not-run').stdout).toBe('not-run\n');
      expect(c.get('reload-app')!.changes['stdout']).toBe('reloaded');
    }
  });

  it('a second apply changes nothing, and a dry run then predicts nothing', async () => {
    const initialised = targets.map((t) => t.sh('cat /var/lib/rackseed-demo/initialised').stdout);
    const again = await run('apply');
    const dry = await run('test');
    for (const t of targets) {
      for (const report of [again.get(t.name)!, dry.get(t.name)!]) {
        expect(report.result).toBe('success');
        expect(report.states.filter((s) => s.result !== true || Object.keys(s.changes).length > 0).map((s) => `${s.id}: ${JSON.stringify(s.changes)}`)).toEqual([]);
        expect(report.counts).toMatchObject({ changed: 0, wouldChange: 0, failed: 0, unchanged: report.states.length });
      }
      const byId = new Map(again.get(t.name)!.states.map((s) => [s.id, s]));
      expect(byId.get('initialise')!.comment).toBe('All files in creates exist: /var/lib/rackseed-demo/initialised');
      expect(byId.get('seed-log')!.comment).toBe('unless condition is true: grep -q seeded /var/lib/rackseed-demo/seed.log');
      expect(byId.get('reload-app')!.comment).toBe('State was not run because none of the onchanges reqs changed');
    }
    // creates kept the command from running twice.
    expect(targets.map((t) => t.sh('cat /var/lib/rackseed-demo/initialised').stdout)).toEqual(initialised);
  });

  it('local drift is predicted, put right, and runs the onchanges chain again', async () => {
    const [drifted, untouched] = targets as [SshTarget, SshTarget];
    drifted.sh('echo "workers = 64" >> /etc/rackseed-demo/app.conf && chmod 0644 /etc/rackseed-demo/app.conf');
    drifted.sh('usermod -s /bin/sh -G "" rsdemo && apt-mark unhold jq');
    const dry = await run('test');
    expect([...predicted(dry.get(drifted.name)!).keys()].sort()).toEqual(['app-config', 'demo-user', 'json-tools', 'reload-app']);
    expect(predicted(dry.get(drifted.name)!).get('demo-user')!.changes).toEqual({ shell: '/bin/bash', groups: ['users'] });
    expect(predicted(dry.get(drifted.name)!).get('json-tools')!.changes).toEqual({ jq: { hold: { old: false, new: true } } });
    expect(predicted(dry.get(untouched.name)!).size).toBe(0);
    const predictedConfig = predicted(dry.get(drifted.name)!).get('app-config')!.changes;
    expect(predictedConfig).toEqual({ diff: expect.stringContaining('-workers = 64'), mode: '0640' });

    const applied = await run('apply');
    const c = changed(applied.get(drifted.name)!);
    expect([...c.keys()].sort()).toEqual(['app-config', 'demo-user', 'json-tools', 'reload-app']);
    expect(c.get('app-config')!.changes).toEqual(predictedConfig);
    expect(c.get('demo-user')!.changes).toEqual({ shell: '/bin/bash', groups: ['users'] });
    expect(c.get('json-tools')!.changes).toEqual({ jq: { hold: { old: false, new: true } } });
    expect(drifted.sh('getent passwd rsdemo | cut -d: -f7; id -Gn rsdemo; apt-mark showhold').stdout).toBe('/bin/bash\nrsdemo users\njq\n');
    expect(changed(applied.get(untouched.name)!).size).toBe(0);
    expect(drifted.sh('stat -c %a /etc/rackseed-demo/app.conf; cmp /etc/rackseed-demo/app.conf /var/lib/rackseed-demo/app.conf.loaded && echo loaded').stdout).toBe('640\nloaded\n');
  });

  it('stores every run per node with each state\'s result, changes, comment and duration', async () => {
    for (const t of targets) {
      const runs = await store.listRuns({ node: t.name });
      // Newest first: test, apply (drift); test, apply (idempotence); apply, test (first).
      expect(runs.map((r) => `${r.kind}:${r.result}`)).toEqual(
        t === targets[0]
          ? ['apply:changed', 'test:changed', 'test:success', 'apply:success', 'apply:changed', 'test:changed']
          : ['apply:success', 'test:success', 'test:success', 'apply:success', 'apply:changed', 'test:changed'],
      );
      const first = runs[runs.length - 2]!;
      expect(first.finishedAt).toBeGreaterThanOrEqual(first.startedAt);
      expect(first.summary).toMatchObject({ mode: 'apply', counts: { changed: FIRST_RUN_CHANGES.length, failed: 0, total: FIRST_RUN_CHANGES.length + 1 } });
      const details = first.details as StateResult[];
      expect(details).toHaveLength(FIRST_RUN_CHANGES.length + 1);
      for (const s of details) {
        expect(s).toEqual(
          expect.objectContaining({ key: `${s.module}_|-${s.id}_|-${s.name}_|-${s.fun}`, result: true, comment: expect.any(String), durationMs: expect.any(Number), changes: expect.any(Object) }),
        );
        expect(s.durationMs).toBeGreaterThanOrEqual(0);
      }
      expect(details.find((s) => s.id === 'tree')!.changes).toEqual({ tree: { old: '', new: expect.stringMatching(/^\d/) } });
      expect(details.find((s) => s.id === 'app-config')!.changes).toEqual({ diff: 'New file', mode: '0640', user: 'root', group: 'rsdemo' });
      expect(details.find((s) => s.id === 'cluster-hosts')!.changes['diff']).toContain(`+${t.ip} ${t.name}`);
      expect(await store.getRun(first.id)).toMatchObject({ id: first.id, node: t.name, kind: 'apply', result: 'changed' });
    }
  });
});
