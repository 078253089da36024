/**
 * The k3s agent role applied over real SSH to a real Debian 12 root file system (test/support/ssh-target.ts: sshd
 * in its own network, PID and mount namespaces over a cached debootstrap tree).
 *
 * K3s itself cannot be downloaded here (no internet), and rackseed never downloads it anyway: the operator places
 * the release files on the node. This test places a STAND-IN `k3s` (a three-line shell script) and a fake air-gap
 * image bundle where the operator would, then checks what the states make of them: the installed binary and its
 * mode, the systemd unit, config.yaml with the join token, labels and taints, and that a second run changes nothing.
 * The targets run sshd, not systemd, so the unit is enabled but not started (k3s.start: false, the setting for
 * states applied to an image that starts K3s on its first boot).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInventory } from '../../server/inventory/parse.js';
import type { LifecycleState } from '../../server/model/lifecycle.js';
import { k3sNodePassword, k3sToken, rolePillar } from '../../server/services/role-secrets.js';
import { collectFacts } from '../../server/state/collect-facts.js';
import { compileForNode } from '../../server/state/compile/index.js';
import { buildRenderContext } from '../../server/state/context.js';
import { builtinModules, knownFunctions } from '../../server/state/modules/index.js';
import { composePillar, deepMerge } from '../../server/state/pillar.js';
import { renderTemplateText } from '../../server/state/render/render.js';
import { runPlan } from '../../server/state/run/runner.js';
import { FsSlsSource } from '../../server/state/source-fs.js';
import { openSshTransport, type SshTransport } from '../../server/state/transport/ssh.js';
import type { StateResult } from '../../server/state/types.js';
import { STATES_DIR } from '../fixtures/roles/cluster.js';
import { startSshTargets, type SshTarget, type SshTargets } from '../support/ssh-target.js';

const ARTIFACTS = '/srv/rackseed-artifacts/k3s';
const STAND_IN = '#!/bin/sh\n# STAND-IN for the k3s binary (tests only: the real one cannot be downloaded here).\necho "k3s stand-in $*"\n';

let lab: SshTargets;
let agent: SshTarget;
let transport: SshTransport;
let dataDir: string;

function inventoryFor(target: SshTarget): string {
  return `
cluster: { name: lab, domain: lab.example }
groups:
  k3sctl:
    roles: [base, k3s-server]
  k3s:
    roles: [base, k3s-agent]
    data:
      k3s:
        artifacts: ${ARTIFACTS}
        start: false
        labels: { tier: services, zone: r3 }
        taints: ["dedicated=services:NoSchedule"]
nodes:
  - { name: k3s01, mac: "52:54:00:00:03:01", ip: 10.77.0.200, group: k3sctl }
  - { name: ${target.name}, mac: "52:54:00:00:03:02", ip: ${target.ip}, group: k3s }
`;
}

/** The same target as a second K3s server (k3s01 above it in the inventory). */
function serverInventoryFor(target: SshTarget): string {
  return inventoryFor(target).replace(`ip: ${target.ip}, group: k3s }`, `ip: ${target.ip}, group: k3sctl }`).replace('roles: [base, k3s-server]', 'roles: [base, k3s-server]\n    data: { k3s: { artifacts: ' + ARTIFACTS + ', start: false } }');
}

async function applyAgentRole(): Promise<StateResult[]> {
  return applyRole(inventoryFor(agent), 'k3s.agent');
}

async function applyRole(inventoryText: string, sls: string, states: ReadonlyMap<string, { state: LifecycleState }> = new Map()): Promise<StateResult[]> {
  const inv = parseInventory(inventoryText, 'roles-k3s.yaml');
  const node = inv.nodes.get(agent.name)!;
  const pillar = deepMerge(composePillar(node, inv.groups.get(node.group)), rolePillar(node, dataDir));
  const facts = await collectFacts(transport);
  const context = buildRenderContext(inv, node, pillar, facts, new Map(), states);
  const source = new FsSlsSource([STATES_DIR]);
  // The k3s role only: base would set kernel parameters, which a namespace shares with the host running the test.
  const plan = compileForNode({ source, context, sls: [sls], knownFunctions: knownFunctions() });
  const { results } = await runPlan(plan, {
    registry: builtinModules(),
    context: {
      transport,
      facts,
      timeoutMs: 60_000,
      renderTemplate: (text, file) => renderTemplateText(text, file, context, source),
      readSource: async (ref) => source.readFile(ref),
    },
    options: { test: false },
  });
  return results;
}

const failures = (results: StateResult[]) => results.filter((r) => r.result !== true).map((r) => `${r.key}: ${r.comment}`);

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('SSH targets need root (network namespaces, overlay mounts, chroot)');
  dataDir = mkdtempSync(path.join(tmpdir(), 'rackseed-roles-k3s-'));
  lab = await startSshTargets(1, { names: ['k3s02'] });
  agent = lab.targets[0]!;
  transport = await openSshTransport({ target: agent.name, host: agent.host, port: agent.port, privateKey: agent.privateKey, knownHostKey: agent.hostKeyLine, connectTimeoutMs: 10_000 });
  // What the operator does: put the release files (here stand-ins) into the node's image.
  const placed = agent.sh(
    `mkdir -p ${ARTIFACTS} && printf '%s' '${STAND_IN.replace(/'/g, `'\\''`)}' > ${ARTIFACTS}/k3s && chmod 0644 ${ARTIFACTS}/k3s && ` +
      `printf 'not really images' > ${ARTIFACTS}/k3s-airgap-images-amd64.tar.zst`,
  );
  if (placed.status !== 0) throw new Error(`placing the artefacts failed: ${placed.stderr}`);
}, 300_000);

afterAll(async () => {
  await transport?.close();
  await lab?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('k3s agent role on a real Debian root file system', () => {
  it('installs the binary from the artefact, the unit, the images and config.yaml, then enables the unit', async () => {
    const results = await applyAgentRole();
    expect(failures(results)).toEqual([]);
    expect(results.filter((r) => Object.keys(r.changes).length > 0).map((r) => r.id)).toEqual(
      expect.arrayContaining(['k3s-binary', 'k3s-airgap-images', '/etc/rancher/k3s/config.yaml', '/etc/systemd/system/k3s-agent.service', 'k3s-service']),
    );

    // The binary: the artefact's bytes, root-owned, executable; the usual tool links next to it.
    expect(agent.sh('stat -c "%a %U %G" /usr/local/bin/k3s && cmp /usr/local/bin/k3s ' + ARTIFACTS + '/k3s && echo same').stdout).toBe('755 root root\nsame\n');
    expect(agent.sh('/usr/local/bin/kubectl version').stdout).toBe('k3s stand-in version\n');
    expect(agent.sh('readlink /usr/local/bin/kubectl /usr/local/bin/crictl /usr/local/bin/ctr').stdout).toBe('k3s\nk3s\nk3s\n');
    expect(agent.sh('cat /var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst').stdout).toBe('not really images');

    // The unit, enabled for the next boot.
    const unit = agent.sh('cat /etc/systemd/system/k3s-agent.service').stdout;
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/k3s agent$/m);
    expect(unit).toMatch(/^Type=exec$/m);
    expect(agent.sh('systemctl is-enabled k3s-agent; readlink /etc/systemd/system/multi-user.target.wants/k3s-agent.service').stdout).toBe(
      'enabled\n/etc/systemd/system/k3s-agent.service\n',
    );

    // config.yaml: the token (root only), the server to join, the node's address, labels and taints.
    expect(agent.sh('stat -c "%a %U %G" /etc/rancher/k3s/config.yaml').stdout).toBe('600 root root\n');
    expect(agent.sh('cat /etc/rancher/k3s/config.yaml').stdout).toBe(
      [
        '# Managed by rackseed (k3s agent): local edits are overwritten.',
        `token: "${k3sToken(dataDir)}"`,
        `node-name: "${agent.name}"`,
        `node-ip: "${agent.ip}"`,
        'node-label:',
        '- "rackseed.io/group=k3s"',
        '- "tier=services"',
        '- "zone=r3"',
        'node-taint:',
        '- "dedicated=services:NoSchedule"',
        '',
      ].join('\n'),
    );
    // The server to join first, written once beside it (rewriting it when the cluster's first server changed
    // restarted every agent).
    const join = '/etc/rancher/k3s/config.yaml.d/10-rackseed-agent-join.yaml';
    expect(agent.sh(`stat -c "%a %U %G" ${join} && grep -v '^#' ${join}`).stdout).toBe('600 root root\nserver: "https://10.77.0.200:6443"\n');
    // The node's own K3s node password, the same after a reimage (the cluster refuses a new one under its name).
    expect(agent.sh('stat -c "%a %U %G" /etc/rancher/node/password && cat /etc/rancher/node/password').stdout).toBe(`600 root root\n${k3sNodePassword(dataDir, agent.name)}\n`);
    // The token and the password never show in what the run reports.
    expect(JSON.stringify(results)).not.toContain(k3sToken(dataDir));
    expect(JSON.stringify(results)).not.toContain(k3sNodePassword(dataDir, agent.name));
  });

  it('a second apply changes nothing, and a node password already there (a node joined before) is kept', async () => {
    const results = await applyAgentRole();
    expect(failures(results)).toEqual([]);
    expect(results.filter((r) => Object.keys(r.changes).length > 0).map((r) => `${r.key}: ${JSON.stringify(r.changes)}`)).toEqual([]);
    agent.sh('printf joined-before > /etc/rancher/node/password');
    const kept = await applyAgentRole();
    expect(failures(kept)).toEqual([]);
    expect(agent.sh('cat /etc/rancher/node/password').stdout).toBe('joined-before');
    agent.sh(`printf '%s' '${k3sNodePassword(dataDir, agent.name)}' > /etc/rancher/node/password`);
  });

  it('as a second server it joins the first and stops being an agent, keeps its join when the first is reimaged (written once), and back as an agent drops the server unit', async () => {
    const joined = await applyRole(serverInventoryFor(agent), 'k3s.server', new Map([['k3s01', { state: 'ready' as const }]]));
    expect(failures(joined)).toEqual([]);
    const bootstrap = '/etc/rancher/k3s/config.yaml.d/10-rackseed-bootstrap.yaml';
    expect(agent.sh(`stat -c "%a %U %G" ${bootstrap} && grep -v '^#' ${bootstrap}`).stdout).toBe('600 root root\nserver: "https://10.77.0.200:6443"\n');
    expect(agent.sh('grep -c -E "^(server|cluster-init):" /etc/rancher/k3s/config.yaml').stdout).toBe('0\n');
    // The agent's join file would override the server's own: gone.
    expect(agent.sh('ls /etc/rancher/k3s/config.yaml.d/10-rackseed-agent-join.yaml 2>&1 | grep -c "No such file"').stdout).toBe('1\n');
    // It was an agent (the test before): that unit is disabled and gone, or the node would run both.
    expect(joined.filter((r) => Object.keys(r.changes).length > 0).map((r) => r.id)).toEqual(expect.arrayContaining(['k3s-agent-other-role', '/etc/systemd/system/k3s-agent.service']));
    expect(agent.sh('ls /etc/systemd/system/k3s-agent.service /etc/systemd/system/multi-user.target.wants/k3s-agent.service 2>&1 | grep -c "No such file"').stdout).toBe('2\n');
    // k3s01 is reimaged: a fresh server would now start the cluster from here, but this one has joined already.
    const later = await applyRole(serverInventoryFor(agent), 'k3s.server', new Map([['k3s01', { state: 'configuring' as const }], [agent.name, { state: 'ready' as const }]]));
    expect(failures(later)).toEqual([]);
    expect(later.filter((r) => Object.keys(r.changes).length > 0).map((r) => r.id)).toEqual([]);
    expect(agent.sh(`grep -v '^#' ${bootstrap}`).stdout).toBe('server: "https://10.77.0.200:6443"\n');
    // Back to the agent: the server's unit and its join file go.
    const back = await applyAgentRole();
    expect(failures(back)).toEqual([]);
    expect(agent.sh(`ls ${bootstrap} /etc/systemd/system/k3s.service /etc/systemd/system/multi-user.target.wants/k3s.service 2>&1 | grep -c "No such file"`).stdout).toBe('3\n');
    expect(agent.sh('systemctl is-enabled k3s-agent').stdout).toBe('enabled\n');
  });

  it('a changed artefact is installed again; a missing one fails and says where to put it', async () => {
    agent.sh(`printf '\\n# a newer stand-in\\n' >> ${ARTIFACTS}/k3s`);
    const updated = await applyAgentRole();
    expect(failures(updated)).toEqual([]);
    expect(updated.find((r) => r.id === 'k3s-binary')!.changes).toMatchObject({ retcode: 0 });
    expect(agent.sh(`cmp /usr/local/bin/k3s ${ARTIFACTS}/k3s && echo same`).stdout).toBe('same\n');

    agent.sh(`rm ${ARTIFACTS}/k3s`);
    const missing = await applyAgentRole();
    const binary = missing.find((r) => r.id === 'k3s-binary')!;
    expect(binary.result).toBe(false);
    expect(binary.changes['stderr']).toBe(`k3s artefact ${ARTIFACTS}/k3s is missing: place the k3s binary there (rackseed never downloads it)`);
  });
});
