/**
 * `rackseed state test|apply` end to end: the real server (`rackseed serve`, started through the CLI) runs inside
 * the targets' hub network namespace and reaches two real sshd targets at <node ip>:22 with its own SSH identity
 * and the host keys pinned in its data directory, exactly as after provisioning; the real CLI, run in the same
 * namespace with the server's config file, prints the table or the Salt-like JSON and exits 0 / 1 / 3.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRackseedProcess, type RackseedProcess } from '../support/rackseed-process.js';
import { startSshTargets, type SshTarget, type SshTargets } from '../support/ssh-target.js';
import { TSX_IMPORT } from '../support/tsx.js';
import { waitFor } from '../support/wait.js';

const SLS_DIR = path.resolve(import.meta.dirname, '../fixtures/sls-real/cli');
const CLI = path.resolve(import.meta.dirname, '../../server/cli/main.ts');
const HTTP_ADDRESS = '10.77.0.1';

let lab: SshTargets;
let targets: SshTarget[];
let work: string;
let dataDir: string;
let server: RackseedProcess;

/**
 * node03 is an address of node02's (added in beforeAll) pinned with node01's host key: what a reinstalled node, or
 * another machine on a node's address, looks like to the server. It must refuse to run there.
 */
const NODE03_IP = '10.77.0.13';
function inventoryYaml(ts: SshTarget[]): string {
  const nodes = ts.map((t, i) => `  - { name: ${t.name}, mac: "02:00:00:00:50:0${i + 1}", ip: ${t.ip}, group: demo }\n`).join('');
  return `cluster: { name: lab }\ngroups:\n  demo: {}\nnodes:\n${nodes}  - { name: node03, mac: "02:00:00:00:50:03", ip: ${NODE03_IP}, group: demo }\n`;
}

/** The real CLI as an operator runs it on the server: `rackseed --config <server config> ...`. */
async function rackseed(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return startRackseed(...args).done;
}

/** The CLI started, for a test that interrupts it (`child` is the CLI's own process: `ip netns exec` execs). */
function startRackseed(...args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = lab.network.netns.spawn(lab.network.hub, process.execPath, ['--import', TSX_IMPORT, CLI, '--config', path.join(server.dir, 'rackseed.yaml'), ...args]);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c))).then((code) => ({ code, stdout, stderr }));
  return { child, done };
}

/** The admin API from inside the namespace (the server's token is in the data directory this test made). */
function api<T>(apiPath: string): T {
  const token = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
  const r = lab.network.netns.run(lab.network.hub, 'curl', ['-sf', '-H', `Authorization: Bearer ${token}`, `http://${HTTP_ADDRESS}:8080/api/v1${apiPath}`]);
  if (r.status !== 0) throw new Error(`GET ${apiPath} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Table rows by node: [result, changed-or-would-change, unchanged, failed]. */
function tableRows(stdout: string): Record<string, string[]> {
  const rows: Record<string, string[]> = {};
  for (const line of stdout.split('\n')) {
    const cells = line.split('│').map((c) => c.trim()).filter((c) => c !== '');
    if (cells.length === 6 && targets.some((t) => t.name === cells[0])) rows[cells[0]!] = cells.slice(1, 5);
  }
  return rows;
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('SSH targets need root (network namespaces, overlay mounts, chroot)');
  lab = await startSshTargets(2);
  targets = lab.targets;
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-state-cli-'));
  // The server's data directory as provisioning leaves it: its SSH key (the one the targets trust) and each node's pin.
  dataDir = path.join(work, 'data');
  mkdirSync(path.join(dataDir, 'ssh'), { recursive: true, mode: 0o700 });
  writeFileSync(path.join(dataDir, 'ssh/id_ed25519'), targets[0]!.privateKey, { mode: 0o600 });
  writeFileSync(path.join(dataDir, 'ssh/id_ed25519.pub'), readFileSync(`${targets[0]!.privateKeyFile}.pub`, 'utf8'));
  for (const t of targets) {
    mkdirSync(path.join(dataDir, 'nodes', t.name), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(dataDir, 'nodes', t.name, 'known_host'), `${t.name},${t.ip} ${t.hostKeyLine}\n`);
  }
  mkdirSync(path.join(dataDir, 'nodes/node03'), { mode: 0o700 });
  writeFileSync(path.join(dataDir, 'nodes/node03/known_host'), `node03,${NODE03_IP} ${targets[0]!.hostKeyLine}\n`);
  const ifname = /^\d+: ([^@:]+)[@:]/m.exec(lab.network.netns.run(targets[1]!.ns, 'ip', ['-o', 'link', 'show', 'type', 'veth']).stdout)?.[1];
  if (!ifname) throw new Error(`no veth in ${targets[1]!.ns}`);
  lab.network.netns.addAddress(targets[1]!.ns, ifname, `${NODE03_IP}/24`);
  chmodSync(dataDir, 0o700);
  server = await startRackseedProcess({
    netns: lab.network.netns,
    ns: lab.network.hub,
    httpAddress: HTTP_ADDRESS,
    logLevel: 'info',
    inventory: inventoryYaml(targets),
    config: `data_dir: ${dataDir}\ntftp:\n  enabled: false\nstates:\n  dirs: [${SLS_DIR}]\n  pillar_dir: ${path.join(work, 'pillar')}\n  ssh_port: 22\n  command_timeout_seconds: 60\n`,
  });
}, 300_000);

afterAll(async () => {
  await server?.stop();
  await lab?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('rackseed state test|apply through the server', () => {
  it('state test: exit 3, a table of what would change per node, nothing touched', async () => {
    const r = await rackseed('state', 'test', 'node01', 'node02');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/NODE\s+│\s+RESULT\s+│\s+WOULD CHANGE\s+│\s+UNCHANGED\s+│\s+FAILED\s+│\s+SECONDS/);
    // motd, the directory and the marker command would change; operator-check is skipped (its onlyif is false).
    expect(tableRows(r.stdout)).toEqual({ node01: ['changed', '3', '1', '0'], node02: ['changed', '3', '1', '0'] });
    expect(r.stdout).toMatch(/^node01 {2}would change +file\.managed {2}motd \(\/etc\/motd\) {2}\[cli\]$/m);
    expect(r.stdout).toMatch(/^node02 {2}would change +cmd\.run {2}converged-marker .*\[cli\]$/m);
    expect(r.stdout).toContain('+node01 is managed by rackseed');
    expect(r.stdout).toMatch(/2 node\(s\): 6 state\(s\) would change, 2 unchanged, 0 failed; 0 node\(s\) failed\n$/);
    for (const t of targets) expect(t.sh('cat /etc/motd; test -e /etc/rackseed-cli || echo untouched').stdout).toMatch(/untouched\n$/);
  });

  it('state apply: exit 0, changed counts and the diffs', async () => {
    const r = await rackseed('state', 'apply', 'node01', 'node02');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/NODE\s+│\s+RESULT\s+│\s+CHANGED\s+│\s+UNCHANGED\s+│\s+FAILED/);
    expect(tableRows(r.stdout)).toEqual({ node01: ['changed', '3', '1', '0'], node02: ['changed', '3', '1', '0'] });
    expect(r.stdout).toMatch(/^node01 {2}changed +file\.managed {2}motd \(\/etc\/motd\) {2}\[cli\]$/m);
    // The diff of /etc/motd against what Debian shipped.
    expect(r.stdout).toMatch(/^ {6}-The programs included with the Debian GNU\/Linux system are free software;$/m);
    expect(r.stdout).toMatch(/^ {6}\+node02 is managed by rackseed$/m);
    expect(r.stdout).toMatch(/2 node\(s\): 6 changed, 2 unchanged, 0 failed; 0 node\(s\) failed\n$/);
    for (const t of targets) {
      expect(t.sh('cat /etc/motd').stdout).toBe(`${t.name} is managed by rackseed\n`);
      expect(t.sh('test -s /etc/rackseed-cli/converged && echo converged').stdout).toBe('converged\n');
    }
  });

  it('state apply --json: a Salt-like return keyed by state key, per node', async () => {
    const r = await rackseed('--json', 'state', 'apply', 'node01', 'node02');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { summary: Record<string, unknown>; nodes: Record<string, Record<string, Record<string, unknown>>> };
    expect(out.summary).toEqual({ type: 'summary', mode: 'apply', nodes: 2, failedNodes: 0, changedNodes: 0, states: { changed: 0, unchanged: 8, failed: 0, wouldChange: 0 } });
    expect(Object.keys(out.nodes).sort()).toEqual(['node01', 'node02']);
    const runs = (out as unknown as { runs: Record<string, { runId: string; result: string }> }).runs;
    for (const t of targets) expect(runs[t.name]).toEqual({ runId: expect.stringMatching(/^[0-9a-f-]{36}$/), result: 'success' });
    for (const t of targets) {
      const ret = out.nodes[t.name]!;
      expect(Object.keys(ret)).toEqual([
        'file_|-motd_|-/etc/motd_|-managed',
        'file_|-/etc/rackseed-cli_|-/etc/rackseed-cli_|-directory',
        'cmd_|-converged-marker_|-date > /etc/rackseed-cli/converged_|-run',
        'cmd_|-operator-check_|-echo "the operator\'s check failed" >&2; exit 4_|-run',
      ]);
      expect(ret['file_|-motd_|-/etc/motd_|-managed']).toEqual({
        result: true,
        changes: {},
        comment: 'File /etc/motd is in the correct state',
        name: '/etc/motd',
        __id__: 'motd',
        __sls__: 'cli',
        __run_num__: 0,
        duration: expect.any(Number),
        start_time: expect.stringMatching(/^\d\d:\d\d:\d\d\.\d{6}$/),
      });
      expect(ret['cmd_|-converged-marker_|-date > /etc/rackseed-cli/converged_|-run']).toMatchObject({ result: true, comment: 'All files in creates exist: /etc/rackseed-cli/converged', __run_num__: 2 });
    }
  });

  it('a second state test finds nothing to do and exits 0', async () => {
    const r = await rackseed('state', 'test', 'node[01-02]');
    expect(r.code).toBe(0);
    expect(tableRows(r.stdout)).toEqual({ node01: ['success', '0', '4', '0'], node02: ['success', '0', '4', '0'] });
    expect(r.stdout).toMatch(/2 node\(s\): 0 state\(s\) would change, 8 unchanged, 0 failed; 0 node\(s\) failed\n$/);
  });

  it('a failing state makes apply exit 1 and names the state, its comment and its output', async () => {
    const broken = targets[1]!;
    broken.sh('touch /etc/rackseed-cli/break');
    const r = await rackseed('state', 'apply', 'node01', 'node02');
    expect(r.code).toBe(1);
    expect(tableRows(r.stdout)).toEqual({ node01: ['success', '0', '4', '0'], node02: ['failed', '0', '3', '1'] });
    expect(r.stdout).toMatch(/^node02 {2}FAILED +cmd\.run {2}operator-check .*\[cli\]$/m);
    expect(r.stdout).toContain('Command "echo "the operator\'s check failed" >&2; exit 4" failed with exit code 4');
    expect(r.stdout).toMatch(/^ {6}stderr: the operator's check failed$/m);
    expect(r.stdout).toMatch(/2 node\(s\): 0 changed, 7 unchanged, 1 failed; 1 node\(s\) failed\n$/);
  });

  it('a node whose host key is not the pinned one is refused: its run fails with the reason, exit 1', async () => {
    const r = await rackseed('state', 'apply', 'node02', 'node03');
    expect(r.code).toBe(1);
    expect(tableRows(r.stdout)).toEqual({ node02: ['failed', '0', '3', '1'] });
    expect(r.stdout).toMatch(/│ node03\s+│ failed: SSH_HOST_KEY_MISMATCH\s+│ 0\s+│ 0\s+│ 0\s+│/);
    expect(r.stdout).toMatch(new RegExp(`^node03: SSH_HOST_KEY_MISMATCH: host key mismatch at ${NODE03_IP.replace(/\./g, '\\.')}:22: pinned ssh-ed25519 SHA256:`, 'm'));
    // The refusal comes before authentication: node02's sshd (which node03's address reaches) sees no login.
    const logins = (): number => targets[1]!.log().split('\n').filter((l) => l.startsWith('Accepted publickey')).length;
    const before = logins();
    const json = await rackseed('--json', 'state', 'test', 'node03');
    expect(json.code).toBe(1);
    expect(logins()).toBe(before);
    expect(JSON.parse(json.stdout).nodes.node03).toEqual({ error: { code: 'SSH_HOST_KEY_MISMATCH', message: expect.stringContaining('refusing to run') }, runId: expect.any(String) });
  });

  it('an unknown target is refused before anything runs: exit 1 with a one-line reason', async () => {
    const r = await rackseed('state', 'apply', 'node01', 'nosuchnode');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^rackseed: .*nosuchnode.*\n$/);
  });

  it('GET /api/v1/runs?node=node01 lists that node\'s stored runs, newest first', async () => {
    const { runs } = api<{ runs: Array<{ node: string; kind: string; result: string; summary: { counts: { total: number } } }> }>('/runs?node=node01');
    expect(runs.map((x) => `${x.node} ${x.kind} ${x.result}`)).toEqual([
      'node01 apply success',
      'node01 test success',
      'node01 apply success',
      'node01 apply changed',
      'node01 test changed',
    ]);
    expect(runs.every((x) => x.summary.counts.total === 4)).toBe(true);
    const failed = api<{ runs: Array<{ result: string }> }>('/runs?node=node02&kind=apply&limit=1').runs;
    expect(failed.map((x) => x.result)).toEqual(['failed']);
    // limit is digits only, as for /events (Number() read "0x10" and "1e2" before).
    for (const bad of ['0x10', '1e2']) expect(() => api(`/runs?limit=${bad}`)).toThrow(/failed \(22\)/);
  });

  it('rackseed runs list / show: the runs above from the command line, the failed state first with its output', async () => {
    const list = await rackseed('runs', 'list', 'node[02-03]', '--kind', 'apply');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/│ node02\s+│ apply\s+│ \S+Z\s+│ \S+s\s+│ FAILED: 1 failed, 3 ok\s+│/);
    expect(list.stdout).toMatch(/│ node03\s+│ apply\s+│ \S+Z\s+│ \S+s\s+│ FAILED: SSH_HOST_KEY_MISMATCH\s+│/);
    expect(list.stdout).not.toMatch(/│ node01\s+│/);

    const [failed] = JSON.parse((await rackseed('--json', 'runs', 'list', 'node02', '--kind', 'apply', '--limit', '1')).stdout).runs as Array<{ id: string }>;
    const show = await rackseed('runs', 'show', failed!.id);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^states:\nnode02 {2}FAILED +cmd\.run {2}operator-check .*\[cli\]\n/m);
    expect(show.stdout).toMatch(/^ {6}stderr: the operator's check failed$/m);
    expect(show.stdout).toMatch(/^3 states unchanged$/m);

    const missing = await rackseed('runs', 'show', 'no-such-run');
    expect(missing).toEqual({ code: 1, stdout: '', stderr: 'rackseed: no run "no-such-run"\n' });
  });
});

describe('rackseed exec through the server', () => {
  it('runs the command on every node and prints alike answers once, under their hostlist', async () => {
    const r = await rackseed('exec', 'node[01-02]', '--', 'cat /etc/motd | wc -l;', 'echo done');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('---- node[01-02] (2) ----\n1\ndone\n2 nodes: 2 exit 0, 0 exit non-zero, 0 did not run or finish\n');
  });

  it('takes not: targets out of the selection, as every fleet verb does', async () => {
    const r = await rackseed('exec', 'node[01-02]', 'not:node02', '--', 'hostname');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('---- node01 (1) ----\nnode01\n1 node: 1 exit 0, 0 exit non-zero, 0 did not run or finish\n');
  });

  it('keeps differing answers apart, with their exit status and stderr, and a node it refused to reach as not run: exit 1', async () => {
    const r = await rackseed('exec', 'node01', 'node02', 'node03', '--', 'hostname; test "$(hostname)" = node01 || { echo "not node01" >&2; exit 3; }');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('---- node01 (1) ----\nnode01\n');
    expect(r.stdout).toContain('---- node02 (1): exit 3 ----\nnode02\n-- stderr --\nnot node01\n');
    // node03's address answers with another host key than its pin: refused before any login, as for the states.
    expect(r.stdout).toMatch(/---- node03 \(1\): NOT RUN: host key mismatch at 10\.77\.0\.13:22: pinned ssh-ed25519 SHA256:.*\n/);
    expect(r.stdout).toMatch(/3 nodes: 1 exit 0, 1 exit non-zero, 1 did not run or finish\n$/);
  });

  it('--prefix prints every line as node: line, failures on stderr; --json gives each outcome', async () => {
    const r = await rackseed('exec', '--prefix', 'node[01-02]', '--', 'printf "a\\nb\\n"; exit $(( $(hostname | tail -c 2) - 1 ))');
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n').sort()).toEqual(['', 'node01: a', 'node01: b', 'node02: a', 'node02: b']);
    expect(r.stderr).toBe('node02: [exit 1]\n2 nodes: 1 exit 0, 1 exit non-zero, 0 did not run or finish\n');

    const json = await rackseed('--json', 'exec', 'node02', '--', 'echo out; echo err >&2; exit 4');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({
      summary: { type: 'summary', nodes: 1, succeeded: 0, exitNonZero: 1, unfinished: 0 },
      nodes: [{ node: 'node02', ran: true, code: 4, stdout: 'out\n', stderr: 'err\n', durationMs: expect.any(Number) }],
    });
  });

  it('kills a command that outlives --timeout on the node, and reports the node as timed out (it ran: not "not run")', async () => {
    const r = await rackseed('exec', '--timeout', '1', 'node01', '--', 'sleep 300');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('---- node01 (1): TIMED OUT (killed after 1 s) ----\n1 node: 0 exit 0, 0 exit non-zero, 1 did not run or finish\n');
    // The whole process group is gone from the node, not only the SSH channel.
    expect(targets[0]!.sh('pgrep -x sleep || echo none').stdout).toBe('none\n');
  });

  it('shows what a timed-out command printed before it hung, under its TIMED OUT header or as node: lines (--prefix)', async () => {
    // Before: the node was reported TIMED OUT with nothing under it, and where it hung was lost.
    const r = await rackseed('exec', '--timeout', '2', 'node01', '--', 'echo started; echo "waiting for the mount" >&2; sleep 300');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('---- node01 (1): TIMED OUT (killed after 2 s) ----\nstarted\n-- stderr --\nwaiting for the mount\n1 node: 0 exit 0, 0 exit non-zero, 1 did not run or finish\n');
    const p = await rackseed('exec', '--prefix', '--timeout', '2', 'node[01-02]', '--', 'echo started on $(hostname); sleep 300');
    expect(p.code).toBe(1);
    expect(p.stdout.split('\n').sort()).toEqual(['', 'node01: started on node01', 'node02: started on node02']);
    expect(p.stderr.split('\n').sort()).toEqual(['', '2 nodes: 0 exit 0, 0 exit non-zero, 2 did not run or finish', 'node01: [TIMED OUT (killed after 2 s)]', 'node02: [TIMED OUT (killed after 2 s)]']);
  });

  it('stops the command on the node when the CLI goes away (Ctrl-C), rather than letting it run until --timeout', async () => {
    const cli = startRackseed('exec', '--timeout', '3600', 'node01', '--', 'sleep 300');
    await waitFor('sleep to run on node01', () => targets[0]!.sh('pgrep -x sleep').status === 0, 30_000);
    cli.child.kill('SIGINT');
    await cli.done;
    // Before: the server ran it on until the timeout, and started the nodes not yet started.
    await waitFor('the sleep to be killed on node01', () => targets[0]!.sh('pgrep -x sleep || echo none').stdout === 'none\n', 15_000);
  });

  it('refuses a command line without -- (exit 2) and an unknown target (exit 1) before anything runs', async () => {
    const usage = await rackseed('exec', 'node01', 'hostname');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('put the command after --');
    const unknown = await rackseed('exec', 'nosuchnode', '--', 'hostname');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^rackseed: .*nosuchnode.*\n$/);
  });
});
