/**
 * Role secrets: made once on the server (0600), handed only to nodes whose roles use them, and never shown in a
 * run's changes. The full plans of a Slurm compute node and a K3s agent run through the real runner over a fake
 * transport that plays a node needing every change; everything that went over the wire is then searched.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Inventory } from '../../server/model/inventory.js';
import { loadPillarDocuments } from '../../server/services/pillar-files.js';
import { k3sToken, mungeKey, rolePillar, secretsForRoles } from '../../server/services/role-secrets.js';
import { compileForNode } from '../../server/state/compile/index.js';
import { buildRenderContext } from '../../server/state/context.js';
import { builtinModules, knownFunctions } from '../../server/state/modules/index.js';
import { composePillar, deepMerge } from '../../server/state/pillar.js';
import { renderTemplateText } from '../../server/state/render/render.js';
import { runPlan } from '../../server/state/run/runner.js';
import { FsSlsSource } from '../../server/state/source-fs.js';
import { FakeTransport, type CommandHandler } from '../../server/state/transport/fake.js';
import type { RenderContext, StateResult } from '../../server/state/types.js';
import { FACTS, STATES_DIR, loadTestInventory, nodeOf } from '../fixtures/roles/cluster.js';

let work: string;
let dataDir: string;
let pillarDir: string;
const GPU_GROUP_SECRET = 'gpu-group-license-5e1d7c0b9a';
const GPU_GROUP_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGpuGroupOnlyKey gpu-admins';
const K3S_GROUP_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK3sGroupOnlyKey k3s-admins';

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-role-secrets-'));
  dataDir = path.join(work, 'data');
  pillarDir = path.join(work, 'pillar');
  mkdirSync(path.join(pillarDir, 'groups'), { recursive: true });
  const writePillar = (group: string, text: string) => {
    const file = path.join(pillarDir, 'groups', `${group}.yaml`);
    writeFileSync(file, text, { mode: 0o600 });
    chmodSync(file, 0o600);
  };
  writePillar('gpu', `admin: { ssh_keys: ["${GPU_GROUP_KEY}"] }\nsecrets: { license: ${GPU_GROUP_SECRET} }\n`);
  writePillar('k3s', `admin: { ssh_keys: ["${K3S_GROUP_KEY}"] }\n`);
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('role secrets: made once, kept private', () => {
  it('secretsForRoles gives the munge key only to slurm-* roles and the K3s token only to k3s roles', () => {
    const secrets = { mungeKeyB64: 'bXVuZ2U=', k3sToken: 'tok', k3sNodePassword: 'pw' };
    expect(secretsForRoles(['base', 'slurm-compute', 'nvidia'], secrets)).toEqual({ secrets: { munge_key_b64: 'bXVuZ2U=' } });
    expect(secretsForRoles(['base', 'slurm-login'], secrets)).toEqual({ secrets: { munge_key_b64: 'bXVuZ2U=' } });
    expect(secretsForRoles(['base', 'k3s-agent'], secrets)).toEqual({ secrets: { k3s_token: 'tok', k3s_node_password: 'pw' } });
    expect(secretsForRoles(['k3s'], secrets)).toEqual({ secrets: { k3s_token: 'tok', k3s_node_password: 'pw' } });
    expect(secretsForRoles(['base', 'nvidia', 'infiniband'], secrets)).toEqual({});
    expect(secretsForRoles(['slurm-compute', 'k3s-agent'], secrets)).toEqual({ secrets: { munge_key_b64: 'bXVuZ2U=', k3s_token: 'tok', k3s_node_password: 'pw' } });
  });

  it('makes each secret on first need, 0600 in a 0700 directory, and returns the same value afterwards', () => {
    const dir = path.join(work, 'once');
    expect(rolePillar({ name: 'n1', roles: ['base'] }, dir)).toEqual({});
    const k3s = rolePillar({ name: 'k3s02', roles: ['base', 'k3s-agent'] }, dir);
    expect(() => statSync(path.join(dir, 'secrets', 'munge.key'))).toThrow(/ENOENT/);
    const slurm = rolePillar({ name: 'cn01', roles: ['slurm-compute'] }, dir);
    const munge = (slurm as { secrets: { munge_key_b64: string } }).secrets.munge_key_b64;
    expect(Buffer.from(munge, 'base64')).toHaveLength(1024);
    expect((k3s as { secrets: { k3s_token: string } }).secrets.k3s_token).toMatch(/^[0-9a-f]{64}$/);
    for (const file of ['munge.key', 'k3s-token']) expect(statSync(path.join(dir, 'secrets', file)).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(dir, 'secrets')).mode & 0o777).toBe(0o700);
    const both = rolePillar({ name: 'head01', roles: ['slurm-controller', 'k3s-server'] }, dir) as { secrets: Record<string, string> };
    expect(both.secrets).toMatchObject({ munge_key_b64: munge, k3s_token: (k3s as { secrets: { k3s_token: string } }).secrets.k3s_token });
    // Each node's own K3s node password: stable for the node (a reimage keeps it), different from every other node's.
    const password = (k3s as { secrets: { k3s_node_password: string } }).secrets.k3s_node_password;
    expect(password).toMatch(/^[0-9a-f]{64}$/);
    expect(rolePillar({ name: 'k3s02', roles: ['k3s-agent'] }, dir)).toMatchObject({ secrets: { k3s_node_password: password } });
    expect(both.secrets['k3s_node_password']).not.toBe(password);
    expect(statSync(path.join(dir, 'secrets', 'k3s-node-password-key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dir, 'secrets', 'munge.key'), 'utf8')).toBe(`${munge}\n`);
  });

  it('keeps an operator-supplied key, and refuses one that others can read or that is not a munge key', () => {
    const dir = path.join(work, 'operator');
    mkdirSync(path.join(dir, 'secrets'), { recursive: true, mode: 0o700 });
    const own = Buffer.alloc(64, 7).toString('base64');
    writeFileSync(path.join(dir, 'secrets', 'munge.key'), `${own}\n`, { mode: 0o600 });
    expect(mungeKey(dir)).toBe(own);
    chmodSync(path.join(dir, 'secrets', 'munge.key'), 0o644);
    expect(() => mungeKey(dir)).toThrow(/must not be readable by group or others/);
    writeFileSync(path.join(dir, 'secrets', 'k3s-token'), 'two words\n', { mode: 0o600 });
    expect(() => k3sToken(dir)).toThrow(/one word/);
    const short = path.join(work, 'short');
    mkdirSync(path.join(short, 'secrets'), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(short, 'secrets', 'munge.key'), Buffer.alloc(8).toString('base64'), { mode: 0o600 });
    expect(() => mungeKey(short)).toThrow(/at least 32 bytes/);
  });
});

/** The node's render context as the state service builds it, from real pillar files and the real secrets store. */
function contextOf(inv: Inventory, name: string): RenderContext {
  const node = nodeOf(inv, name);
  const pillar = deepMerge(composePillar(node, inv.groups.get(node.group), loadPillarDocuments(pillarDir, node)), rolePillar(node, dataDir));
  const context = buildRenderContext(inv, node, pillar, FACTS[name]!);
  for (const entry of context.cluster.nodes) {
    const f = FACTS[entry.name]!;
    entry.facts = { cpus: f.cpus, memoryMiB: f.memoryMiB, gpus: f.gpus.map((g) => ({ model: g.model, memoryMiB: g.memoryMiB })) };
  }
  return context;
}

/**
 * A node on which everything is still to do: probes find nothing, `unless` conditions are false, packages are
 * reported installed at the pinned version (so the states after them run), and every action succeeds (a started
 * service runs).
 */
function freshNode(unless: ReadonlySet<string>): CommandHandler {
  return (command) => {
    if (unless.has(command)) return { code: 1, stdout: '', stderr: '' };
    // The check after a service start: it runs.
    if (command.includes('--rackseed-journal--')) return { code: 0, stdout: 'active=active\nenabled=enabled\nreload=no\n--rackseed-journal--\n', stderr: '' };
    const sections = [...command.matchAll(/__rackseed_section__ %s %s\\n' (\S+) "\$\?"/g)].map((m) => m[1]!);
    if (sections.length > 0) return { code: 0, stdout: sections.map((s) => `\n__rackseed_section__ ${s} 1\n`).join(''), stderr: '' };
    if (command.includes('dpkg-query')) {
      const names = [...command.slice(command.indexOf(' -- ')).matchAll(/'([^']+)'/g)].map((m) => m[1]!);
      return { code: 0, stdout: names.map((n) => `${n}\t${n}\thi \t535.183.01-1\n`).join(''), stderr: '' };
    }
    return undefined;
  };
}

async function runNode(inv: Inventory, name: string): Promise<{ transport: FakeTransport; results: StateResult[]; context: RenderContext }> {
  const context = contextOf(inv, name);
  const source = new FsSlsSource([STATES_DIR]);
  const plan = compileForNode({ source, context, knownFunctions: knownFunctions() });
  // Older secrets are already there (a rotated key): a diff would show both versions if it were not hidden.
  const files = { '/etc/munge/munge.key.b64': Buffer.alloc(64, 1).toString('base64'), '/etc/rancher/k3s/config.yaml': 'token: "old-token"\n' };
  const transport = new FakeTransport(name, { files, handler: freshNode(new Set(plan.states.flatMap((s) => s.unless))) });
  const { results } = await runPlan(plan, {
    registry: builtinModules(),
    context: {
      transport,
      facts: context.facts,
      timeoutMs: 10_000,
      renderTemplate: (text, file) => renderTemplateText(text, file, context, source),
      readSource: async (ref) => source.readFile(ref),
    },
    options: { test: false },
    now: () => 0,
  });
  return { transport, results, context };
}

describe('role secrets: what each node receives', () => {
  const inv = loadTestInventory();

  it('a Slurm compute node gets the munge key and its group data, never the K3s token or another group\'s pillar', async () => {
    const { transport, results, context } = await runNode(inv, 'gpu01');
    expect(results.filter((r) => r.result !== true).map((r) => `${r.key}: ${r.comment}`)).toEqual([]);
    const sent = transport.everythingSent;
    const munge = mungeKey(dataDir);
    // Positive controls: the search would find a secret that did go over the wire.
    expect(sent).toContain(munge);
    expect(sent).toContain(GPU_GROUP_KEY);
    expect(transport.files.get('/etc/munge/munge.key.b64')?.options.mode).toBe('0400');
    expect(sent).not.toContain(k3sToken(dataDir));
    expect(sent).not.toContain(K3S_GROUP_KEY);
    expect(JSON.stringify(context.pillar)).not.toContain(K3S_GROUP_KEY);
    expect(JSON.stringify(context.pillar)).toContain(GPU_GROUP_SECRET);
    // The run's changes (stored and shown to operators) carry no secret, not even a part of the key.
    const changes = JSON.stringify(results);
    expect(changes).not.toContain(munge.slice(0, 24));
    expect(changes).not.toContain(k3sToken(dataDir));
    expect(results.find((r) => r.name === '/etc/munge/munge.key.b64')!.changes).toEqual({ diff: '<show_changes=False>' });
    expect(changes).not.toContain(Buffer.alloc(64, 1).toString('base64'));
  });

  it('a K3s agent gets the token in a 0600 config, never the munge key or the GPU group\'s pillar', async () => {
    const { transport, results, context } = await runNode(inv, 'k3s02');
    expect(results.filter((r) => r.result !== true).map((r) => `${r.key}: ${r.comment}`)).toEqual([]);
    const sent = transport.everythingSent;
    const token = k3sToken(dataDir);
    expect(sent).toContain(token);
    expect(transport.files.get('/etc/rancher/k3s/config.yaml')).toMatchObject({ options: { mode: '0600', owner: 'root', group: 'root' } });
    expect(transport.files.get('/etc/rancher/k3s/config.yaml')!.data.toString()).toContain(`token: "${token}"\n`);
    const munge = mungeKey(dataDir);
    for (const part of [munge, munge.slice(0, 24), munge.slice(-24)]) expect(sent).not.toContain(part);
    expect(sent).not.toMatch(/munge/);
    expect(sent).not.toContain(GPU_GROUP_KEY);
    expect(sent).not.toContain(GPU_GROUP_SECRET);
    expect(JSON.stringify(context.pillar)).not.toContain(GPU_GROUP_SECRET);
    const changes = JSON.stringify(results);
    expect(changes).not.toContain(token);
    expect(changes).not.toContain('old-token');
    expect(changes).not.toContain(munge.slice(0, 24));
  });
});
