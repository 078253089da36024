import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAgainst, cliProcess as runCli, type CliResult } from '../support/cli.js';
import { startTestServer, type TestServer } from '../support/server.js';

let srv: TestServer;

beforeAll(async () => {
  srv = await startTestServer({ inventoryFixture: 'api/inventory.yaml' });
});
afterAll(async () => {
  await srv?.stop();
});

const cli = (...args: string[]): Promise<string> => cliAgainst(srv, args);

const cliProcess = (...args: string[]): Promise<CliResult> => runCli(args);

describe('rackseed CLI', () => {
  it('node list: a table for people', async () => {
    const out = await cli('node', 'list');
    const lines = out.trimEnd().split('\n');
    expect(lines[1]).toMatch(/NAME\s+│\s+GROUP\s+│\s+MAC\s+│\s+IP\s+│\s+STATE/);
    expect(out).toMatch(/head01\s+│\s+head\s+│\s+52:54:00:00:00:01\s+│\s+10\.0\.0\.2\s+│\s+assigned/);
    expect(out).toMatch(/gpu02\s+│\s+gpu\s+│\s+-\s+│\s+10\.0\.1\.12/);
  });
  it('node list --json: the same data for scripts', async () => {
    const nodes = JSON.parse(await cli('--json', 'node', 'list'));
    expect(nodes.map((n: { name: string }) => n.name)).toEqual(['head01', 'gpu01', 'gpu02']);
    expect(nodes[0]).toMatchObject({ group: 'head', macs: ['52:54:00:00:00:01'], state: 'assigned' });
  });
  it('node show: key/value lines and events; --json', async () => {
    const out = await cli('node', 'show', 'head01');
    expect(out).toMatch(/^name\s+head01$/m);
    expect(out).toMatch(/^state\s+assigned$/m);
    expect(out).toMatch(/assigned {2}group=head/);
    const json = JSON.parse(await cli('--json', 'node', 'show', 'head01'));
    expect(json.node.name).toBe('head01');
    expect(json.events[0].event).toEqual({ type: 'assigned', group: 'head' });
  });
  it('node add and node import edit the inventory', async () => {
    expect(await cli('node', 'add', 'head05', '--mac', 'AA-BB-CC-00-00-05', '--ip', '10.0.0.5', '--group', 'head')).toBe('added head05 (group head, aa:bb:cc:00:00:05)\n');
    const csv = path.join(srv.dir, 'more.csv');
    writeFileSync(csv, 'name,mac,ip,group\nhead06,aa:bb:cc:00:00:06,10.0.0.6,head\nhead07,aa:bb:cc:00:00:07,10.0.0.7,head\n');
    expect(JSON.parse(await cli('--json', 'node', 'import', csv))).toEqual({ added: ['head06', 'head07'], updated: [], unchanged: [] });
    expect(srv.inventory.inventory.nodes.has('head07')).toBe(true);
    await cli('node', 'add', 'head08', '--mac', 'aa:bb:cc:00:00:08', '--group', 'head', '--bmc', '10.1.0.8', '--bmc-boot-mode', 'uefi', '--slot', '8');
    expect(srv.inventory.inventory.nodes.get('head08')).toMatchObject({ slot: 8, bmc: { address: '10.1.0.8', kind: 'ipmi', bootMode: 'uefi' } });
  });
  it('node add refuses a slot that is not a whole number instead of dropping it', async () => {
    const r = await cliProcess('--server', srv.httpUrl, '--token', srv.adminToken, 'node', 'add', 'head09', '--mac', 'aa:bb:cc:00:00:09', '--slot', 'x3');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--slot <n>.*a slot is a whole number/);
    expect(srv.inventory.inventory.nodes.has('head09')).toBe(false);
    const noBmc = await cliProcess('--server', srv.httpUrl, '--token', srv.adminToken, 'node', 'add', 'head09', '--mac', 'aa:bb:cc:00:00:09', '--bmc-boot-mode', 'uefi');
    expect(noBmc.code).toBe(2);
    expect(noBmc.stderr).toBe('rackseed: --bmc-kind and --bmc-boot-mode describe a BMC: give its address with --bmc\n');
    expect(srv.inventory.inventory.nodes.has('head09')).toBe(false);
  });
  it('group list and show', async () => {
    expect(await cli('group', 'list')).toMatch(/gpu\s+│\s+debian12-cuda\s+│\s+base,nvidia,slurm-compute\s+│\s+2/);
    expect(await cli('group', 'show', 'gpu')).toMatch(/^gpus\s+8 x H100 \(81559 MiB\)$/m);
    expect(JSON.parse(await cli('--json', 'group', 'list')).map((g: { name: string }) => g.name)).toEqual(['head', 'gpu']);
  });
  it('status: counts per lifecycle state', async () => {
    expect(await cli('status')).toMatch(/^ {2}assigned\s+\d+$/m);
    expect(JSON.parse(await cli('--json', 'status')).byState.assigned).toBeGreaterThanOrEqual(3);
  });
  it('ready with several targets lists each (stored results, nothing run) and exits 1 while any is not ready', async () => {
    const r = await cliProcess('--server', srv.httpUrl, '--token', srv.adminToken, 'ready', 'head01', 'gpu[01-02]');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    for (const node of ['head01', 'gpu01', 'gpu02']) expect(r.stdout).toMatch(new RegExp(`^│ ${node} +│ assigned +│ never checked`, 'm'));
    expect(r.stdout).toContain('0 of 3 node(s) ready');
  });
  it('a command line that cannot run as given exits 2 (usage), like commander\'s own errors', async () => {
    const r = await cliProcess('--server', srv.httpUrl, '--token', srv.adminToken, 'ready', '--check');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^rackseed: rackseed ready --check needs at least one target/);
  });
  it("installer build takes a site's recipe directory (--recipe-dir) and names it when it cannot read it", async () => {
    const r = await cliProcess('installer', 'build', '--out', path.join(tmpdir(), `rackseed-installer-out-${process.pid}`), '--recipe-dir', '/nonexistent-installer-recipe');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^rackseed: \/nonexistent-installer-recipe\/recipe\.yaml: cannot read the installer recipe/);
  });
  it('a failure exits non-zero with a one-line reason', async () => {
    const r = await cliProcess('--server', srv.httpUrl, '--token', srv.adminToken, 'node', 'show', 'nosuchnode');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('rackseed: no node or discovered machine "nosuchnode"\n');
    const bad = await cliProcess('--server', srv.httpUrl, '--token', 'wrong-token-wrong-token-wrong-token', 'status');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('rackseed: invalid admin token\n');
    const down = await cliProcess('--server', 'http://127.0.0.1:9', '--token', 'x', 'status');
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^rackseed: cannot reach rackseed at http:\/\/127\.0\.0\.1:9 .*\n$/);
  });
  it('node show: the image on the disk, and a word when the group installs another one now', async () => {
    const image = (name: string) => ({ name, sha256: 'f'.repeat(64) });
    await srv.store.recordEvents([
      { node: 'gpu01', event: { type: 'provision_started' } },
      { node: 'gpu01', event: { type: 'installed', image: image('debian12-cuda') } },
    ]);
    expect(await cli('node', 'show', 'gpu01')).toMatch(/^installed image\s+debian12-cuda \(sha256 ffffffffffff…\)$/m);
    expect(JSON.parse(await cli('--json', 'node', 'show', 'gpu01')).node.installedImage).toEqual(image('debian12-cuda'));
    await srv.store.recordEvents([
      { node: 'gpu01', event: { type: 'reimage_requested' } },
      { node: 'gpu01', event: { type: 'provision_started' } },
      { node: 'gpu01', event: { type: 'installed', image: image('debian12') } },
    ]);
    expect(await cli('node', 'show', 'gpu01')).toMatch(/^installed image\s+debian12 \(sha256 ffffffffffff…\); its group installs debian12-cuda now \(reimage to move it\)$/m);
  });
});
