/**
 * Fleet audit over real SSH: two sshd targets (Debian 12 trees in their own network namespaces, with an offline apt
 * repository) and one container with a real systemd (test/support/systemd-target.ts), converged with the small SLS
 * tree in test/fixtures/sls-audit, then audited through the service, the API and the CLI. The drift introduced by
 * hand (an edited file, a removed package, a stopped service, a renamed host) must be reported exactly, nothing
 * else; the audit must change nothing on the nodes, nor the nodes' lifecycle.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../server/cli/client.js';
import { auditExitCode, registerAudit } from '../../server/cli/commands/audit.js';
import { CliExit } from '../../server/cli/exit.js';
import { createLogger } from '../../server/log.js';
import type { ResolvedNode } from '../../server/model/inventory.js';
import type { LifecycleEvent } from '../../server/model/lifecycle.js';
import { auditRoutes } from '../../server/net/http/audit-routes.js';
import { errorHandler } from '../../server/net/http/errors.js';
import { summarizeAudit, type AuditNodeReport } from '../../server/services/audit-report.js';
import { AuditService } from '../../server/services/audit-service.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { NodeIdentity } from '../../server/services/node-identity.js';
import { StateService, type StateSettings } from '../../server/services/state-service.js';
import { openSshTransport } from '../../server/state/transport/ssh.js';
import type { Transport } from '../../server/state/types.js';
import { openStore, type ObservedStore } from '../../server/store/index.js';
import { startSshTargets, type SshTarget, type SshTargets } from '../support/ssh-target.js';
import { startSystemdTarget, type SystemdTarget } from '../support/systemd-target.js';

const SLS_DIR = path.resolve(import.meta.dirname, '../fixtures/sls-audit');
const CONF = '/etc/rackseed-audit.conf';

let lab: SshTargets;
let box: SystemdTarget;
let work: string;
let store: ObservedStore;
let inventory: InventoryService;
let identity: NodeIdentity;
let audit: AuditService;
let server: Server;
let client: ApiClient;
let nodes: ResolvedNode[];
const log = createLogger('silent');
/** Connections opened per node, to show that one audit uses one connection per node. */
const connections = new Map<string, number>();

interface Reachable {
  name: string;
  ip: string;
  host: string;
  port: number;
  privateKey: string;
  hostKeyLine: string;
  sh(command: string): { status: number | null; stdout: string; stderr: string };
}
let targets: Map<string, Reachable>;
const target = (name: string): Reachable => targets.get(name)!;

const settings = (): StateSettings => ({
  roots: [SLS_DIR],
  pillarDir: path.join(work, 'pillar'),
  concurrency: 3,
  commandTimeoutMs: 120_000,
  connectTimeoutMs: 10_000,
  sshPort: 22,
});

async function transportFor(node: ResolvedNode): Promise<Transport> {
  const t = target(node.name);
  connections.set(node.name, (connections.get(node.name) ?? 0) + 1);
  return openSshTransport({ target: t.name, host: t.host, port: t.port, username: 'root', privateKey: t.privateKey, knownHostKey: t.hostKeyLine, connectTimeoutMs: 10_000 });
}

function inventoryYaml(): string {
  const [a, b] = lab.targets as [SshTarget, SshTarget];
  return [
    'cluster: { name: audit }',
    'groups:',
    '  tools: { roles: [base, audit-tools] }',
    '  services: { roles: [base, audit-service] }',
    'nodes:',
    `  - { name: ${a.name}, mac: "52:54:00:00:0a:01", ip: ${a.ip}, group: tools }`,
    `  - { name: ${b.name}, mac: "52:54:00:00:0a:02", ip: ${b.ip}, group: tools }`,
    `  - { name: ${box.name}, mac: "52:54:00:00:0a:03", ip: ${box.ip}, group: services }`,
    '',
  ].join('\n');
}

const TO_READY = (group: string): LifecycleEvent[] => [{ type: 'assigned', group }, { type: 'provision_started' }, { type: 'installed' }, { type: 'configure_started' }, { type: 'ready' }];

/** Each node's lifecycle state and how many events it has: an audit must leave both as they were. */
async function lifecycle(): Promise<Record<string, [string | undefined, number]>> {
  const out: Record<string, [string | undefined, number]> = {};
  for (const n of nodes) out[n.name] = [(await store.getNode(n.name))?.state, (await store.listEvents({ node: n.name })).length];
  return out;
}

async function cli(args: string[], json = false): Promise<{ output: string; exit: number }> {
  let output = '';
  const program = new Command().exitOverride();
  registerAudit(program, () => ({ client, out: { json, write: (s) => (output += s) } }));
  try {
    await program.parseAsync(['audit', ...args], { from: 'user' });
    return { output, exit: 0 };
  } catch (err) {
    if (err instanceof CliExit) return { output, exit: err.code };
    throw err;
  }
}

const byNode = (reports: AuditNodeReport[]): Record<string, AuditNodeReport> => Object.fromEntries(reports.map((r) => [r.node, r]));

/** What the audit found, reduced to what an operator acts on: state ids that would change, failed states and checks. */
function findings(reports: AuditNodeReport[]): Record<string, { wouldChange: string[]; failedStates: string[]; failedChecks: string[]; error?: string }> {
  return Object.fromEntries(
    reports.map((r) => [
      r.node,
      {
        wouldChange: r.wouldChange.map((s) => `${s.module}.${s.fun} ${s.id}`),
        failedStates: r.failedStates.map((s) => `${s.id}: ${s.comment}`),
        failedChecks: r.failedChecks.map((e) => e.check),
        ...(r.error ? { error: r.error.code } : {}),
      },
    ]),
  );
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('SSH targets need root (network namespaces, overlay mounts, chroot)');
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-audit-'));
  lab = await startSshTargets(2, { names: ['audit01', 'audit02'] });
  box = await startSystemdTarget({ name: 'auditsd' });
  targets = new Map<string, Reachable>([...lab.targets, box].map((t) => [t.name, t]));

  store = await openStore({ kind: 'sqlite', path: path.join(work, 'rackseed.db') });
  await store.migrate();
  writeFileSync(path.join(work, 'inventory.yaml'), inventoryYaml());
  inventory = new InventoryService(path.join(work, 'inventory.yaml'), log);
  identity = new NodeIdentity(path.join(work, 'data'));
  nodes = [...inventory.inventory.nodes.values()];
  for (const n of nodes) {
    for (const event of TO_READY(n.group)) expect((await store.recordEvent({ node: n.name, event })).ok).toBe(true);
  }

  // Converge: the package from the offline repository, the files, the unit enabled and running.
  const states = new StateService({ inventory, store, identity, settings: settings(), log, transportFor });
  const applied = await states.run(nodes, 'apply');
  const broken = applied.flatMap((r) => [...(r.error ? [`${r.node}: ${r.error.message}`] : []), ...r.states.filter((s) => s.result !== true).map((s) => `${r.node} ${s.id}: ${s.comment}`)]);
  expect(broken).toEqual([]);
  expect(box.sh('systemctl is-active rackseed-audit').stdout).toBe('active\n');
  expect(target('audit02').sh('dpkg-query -W -f=\'${Status}\' tree').stdout).toBe('install ok installed');

  audit = new AuditService({ inventory, store, identity, settings: settings(), log, transportFor });
  const app = express();
  app.use('/api/v1', auditRoutes({ inventory, audit, log }));
  app.use(errorHandler(log));
  server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  client = new ApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'test-token');
}, 600_000);

afterAll(async () => {
  if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  await store?.close();
  await box?.stop();
  await lab?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('rackseed audit over real SSH targets', () => {
  it('a converged fleet audits clean: no drift, one connection and one stored audit run per node, lifecycle untouched', async () => {
    const before = await lifecycle();
    connections.clear();
    const streamed: string[] = [];
    const reports = await audit.audit(nodes, (r) => streamed.push(r.node));

    expect(streamed.sort()).toEqual(['audit01', 'audit02', 'auditsd']);
    expect(findings(reports)).toEqual({
      audit01: { wouldChange: [], failedStates: [], failedChecks: [] },
      audit02: { wouldChange: [], failedStates: [], failedChecks: [] },
      auditsd: { wouldChange: [], failedStates: [], failedChecks: [] },
    });
    for (const r of reports) {
      expect(r).toMatchObject({ drift: false, reachable: true });
      // The dry run and the checks really ran: base.ssh, base.hostname, base.hosts and the roles' "no checks" notes.
      expect(r.counts.total).toBe(r.node === 'auditsd' ? 4 : 3);
      expect(r.counts.unchanged).toBe(r.counts.total);
      expect(r.checks).toBeGreaterThanOrEqual(3);
    }
    expect(summarizeAudit(reports)).toEqual({ type: 'summary', nodes: 3, drifted: 0, clean: 3, unreachable: 0, incomplete: 0 });
    expect(auditExitCode(reports)).toBe(0);
    expect(Object.fromEntries(connections)).toEqual({ audit01: 1, audit02: 1, auditsd: 1 });

    const runs = await store.listRuns({ kind: 'audit' });
    expect(runs.map((r) => [r.node, r.result]).sort()).toEqual([['audit01', 'success'], ['audit02', 'success'], ['auditsd', 'success']]);
    expect(runs.map((r) => r.id).sort()).toEqual(reports.map((r) => r.runId).sort());
    // The dry run lives inside the audit run, not as a separate 'test' run.
    expect(await store.listRuns({ kind: 'test' })).toEqual([]);
    expect(await lifecycle()).toEqual(before);
  });

  it('reports exactly the drift introduced (edited file, removed package, stopped service, renamed host) through the API and the CLI, and changes nothing', async () => {
    const a = target('audit01');
    const b = target('audit02');
    expect(a.sh(`sed -i 's/^group = tools$/group = edited/' ${CONF} && cat ${CONF}`).stdout).toContain('group = edited\n');
    expect(b.sh('dpkg -r tree >/dev/null 2>&1; dpkg-query -W -f=\'${Status}\' tree').stdout).not.toBe('install ok installed');
    expect(b.sh('hostname audit02-renamed && uname -n').stdout).toBe('audit02-renamed\n');
    expect(box.sh('systemctl stop rackseed-audit; systemctl is-active rackseed-audit').stdout).toBe('inactive\n');
    const before = await lifecycle();
    const auditRunsBefore = (await store.listRuns({ kind: 'audit' })).length;

    const { output, exit } = await cli([]);
    expect(exit).toBe(3);

    const lines: unknown[] = [];
    const summary = await client.postStream('/audit', { targets: ['audit0[1-2]', 'auditsd'] }, (l) => lines.push(l));
    expect(lines[0]).toEqual({ type: 'start', nodes: ['audit01', 'audit02', 'auditsd'] });
    const reports = lines.filter((l): l is { type: 'node'; report: AuditNodeReport } => (l as { type: string }).type === 'node').map((l) => l.report);
    expect(summary).toEqual({ type: 'summary', nodes: 3, drifted: 3, clean: 0, unreachable: 0, incomplete: 0 });

    expect(findings(reports)).toEqual({
      audit01: { wouldChange: [`file.managed ${CONF}`], failedStates: [], failedChecks: [] },
      audit02: { wouldChange: ['pkg.installed tree'], failedStates: [], failedChecks: ['base.hostname'] },
      auditsd: { wouldChange: ['service.running rackseed-audit'], failedStates: [], failedChecks: [] },
    });
    const r = byNode(reports);
    // The predicted diff restores the managed content.
    const diff = r.audit01!.wouldChange[0]!.changes.diff as string;
    expect(diff).toMatch(/^-group = edited$/m);
    expect(diff).toMatch(/^\+group = tools$/m);
    expect(r.audit02!.failedChecks[0]).toMatchObject({ check: 'base.hostname', expected: 'audit02', seen: 'audit02-renamed', pass: false });
    expect(r.audit02!.wouldChange[0]!.changes).toHaveProperty('tree');
    expect(r.auditsd!.wouldChange[0]!.changes).toEqual({ 'rackseed-audit': true });

    // The CLI's report shows the same: the diff, the failed check with expected and seen, the summary.
    expect(output).toContain('audit01: DRIFT: 1 state would change, 0 checks failed');
    expect(output).toMatch(/^ +-group = edited$/m);
    expect(output).toMatch(/^ +\+group = tools$/m);
    expect(output).toContain('audit02  would change pkg.installed  tree');
    expect(output).toContain('audit02  check failed  base.hostname: expected audit02, saw audit02-renamed');
    expect(output).toContain('auditsd  would change service.running  rackseed-audit');
    expect(output).toContain('3 nodes audited: 3 drifted, 0 clean, 0 unreachable\n');
    const json = JSON.parse((await cli(['auditsd'], true)).output) as { summary: unknown; nodes: AuditNodeReport[] };
    expect(json.summary).toEqual({ type: 'summary', nodes: 1, drifted: 1, clean: 0, unreachable: 0, incomplete: 0 });
    expect(findings(json.nodes)).toEqual({ auditsd: { wouldChange: ['service.running rackseed-audit'], failedStates: [], failedChecks: [] } });

    // A dry run: the drift is still there.
    expect(a.sh(`grep -c '^group = edited$' ${CONF}`).stdout).toBe('1\n');
    expect(b.sh('dpkg-query -W -f=\'${Status}\' tree 2>/dev/null').stdout).not.toBe('install ok installed');
    expect(box.sh('systemctl is-active rackseed-audit').stdout).toBe('inactive\n');
    // A failed readiness check during an audit does not fail the node: it stays ready, with no new event.
    expect(await lifecycle()).toEqual(before);

    // Three audits of three, three and one node: seven runs, the drifted states kept in each.
    const runs = await store.listRuns({ kind: 'audit', limit: 100 });
    expect(runs).toHaveLength(auditRunsBefore + 7);
    const stored = runs.find((run) => run.id === r.audit01!.runId)!;
    expect(stored).toMatchObject({ node: 'audit01', kind: 'audit', result: 'changed', summary: { drift: true, wouldChange: 1, failedChecks: [] } });
    const details = stored.details as { states: Array<{ id: string }>; counts: { total: number }; evidence: Array<{ check: string }> };
    expect(details.states.map((s) => s.id)).toEqual([CONF]);
    expect(details.counts.total).toBe(3);
    expect(details.evidence.map((e) => e.check)).toEqual(expect.arrayContaining(['base.ssh', 'base.hostname', 'base.hosts']));
    expect(await store.listRuns({ kind: 'test' })).toEqual([]);
  });

  it('an unreachable node is reported with its reason while the others are still audited; the CLI exits 1', async () => {
    lab.targets[0]!.kill();
    const { output, exit } = await cli(['audit01', 'auditsd']);
    expect(exit).toBe(1);
    expect(output).toMatch(/^audit01: UNREACHABLE: STATE_TRANSPORT: /m);
    expect(output).toContain('auditsd  would change service.running  rackseed-audit');
    expect(output).toContain('2 nodes audited: 1 drifted, 0 clean, 1 unreachable\n');

    const [run] = await store.listRuns({ node: 'audit01', kind: 'audit', limit: 1 });
    expect(run).toMatchObject({ result: 'failed', summary: { drift: true, reachable: false, failedChecks: ['base.ssh'], error: { code: 'STATE_TRANSPORT' } } });
  });
});
