/**
 * service.* states against a real systemd: the targets' Debian 12 tree booted with systemd-nspawn
 * (test/support/systemd-target.ts), reached over SSH, driven by the real StateService with the SLS tree in
 * test/fixtures/sls-real/systemd. A dry run predicts, apply does the same, a watched file change restarts the
 * service (a new MainPID), and a second run changes nothing.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';
import { InventoryService } from '../../server/services/inventory-service.js';
import { NodeIdentity } from '../../server/services/node-identity.js';
import { StateService, type NodeRunReport } from '../../server/services/state-service.js';
import { openSshTransport } from '../../server/state/transport/ssh.js';
import { openStore } from '../../server/store/index.js';
import type { ObservedStore } from '../../server/store/types.js';
import { startSystemdTarget, type SystemdTarget } from '../support/systemd-target.js';
import { waitFor } from '../support/wait.js';

const SLS_DIR = path.resolve(import.meta.dirname, '../fixtures/sls-real/systemd');

let box: SystemdTarget;
let work: string;
let store: ObservedStore;
let inventory: InventoryService;
let states: StateService;

const LEGACY_UNIT = '[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n';

function setPillar(ticker: { interval: number; nice: number; exec?: string; initDelay?: number }): void {
  const file = path.join(work, 'pillar/nodes', `${box.name}.yaml`);
  const optional = `${ticker.exec ? `  exec: ${JSON.stringify(ticker.exec)}\n` : ''}${ticker.initDelay ? `  init_delay: ${ticker.initDelay}\n` : ''}`;
  writeFileSync(file, `ticker:\n  interval: ${ticker.interval}\n  nice: ${ticker.nice}\n${optional}`);
  chmodSync(file, 0o600);
}

async function run(mode: 'apply' | 'test'): Promise<NodeRunReport> {
  const [report] = await states.run([inventory.inventory.nodes.get(box.name)!], mode);
  expect(report!.error).toBeUndefined();
  expect(report!.states.filter((s) => s.result === false).map((s) => `${s.id}: ${s.comment}`)).toEqual([]);
  return report!;
}

/** IDs of the states a dry run says would change, or an apply changed. */
const changedIds = (r: NodeRunReport): string[] =>
  r.states
    .filter((s) => (r.mode === 'test' ? s.result === null : Object.keys(s.changes).length > 0))
    .map((s) => s.id)
    .sort();
/** Puts the good ticker back (a test that failed half way must not leave its broken daemon to the next one). */
async function restoreTicker(): Promise<void> {
  setPillar({ interval: 7, nice: 5 });
  await states.run([inventory.inventory.nodes.get(box.name)!], 'apply');
}
const stateOf = (r: NodeRunReport, id: string) => r.states.find((s) => s.id === id)!;
const show = (unit: string, props: string): string => box.sh(`systemctl show -p ${props} --value ${unit}`).stdout;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('systemd-nspawn targets need root');
  box = await startSystemdTarget();
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-state-systemd-'));
  const log = createLogger('warn');
  writeFileSync(path.join(work, 'inventory.yaml'), `cluster: { name: lab }\ngroups:\n  svc: {}\nnodes:\n  - { name: ${box.name}, mac: "02:00:00:00:40:01", ip: ${box.ip}, group: svc }\n`);
  mkdirSync(path.join(work, 'pillar/nodes'), { recursive: true });
  setPillar({ interval: 5, nice: 0 });
  store = await openStore({ kind: 'sqlite', path: path.join(work, 'rackseed.db') });
  await store.migrate();
  inventory = new InventoryService(path.join(work, 'inventory.yaml'), log);
  states = new StateService({
    inventory,
    store,
    identity: new NodeIdentity(path.join(work, 'data')),
    settings: { roots: [SLS_DIR], pillarDir: path.join(work, 'pillar'), concurrency: 1, commandTimeoutMs: 60_000, connectTimeoutMs: 10_000, sshPort: 22 },
    log,
    transportFor: async () => openSshTransport({ target: box.name, host: box.host, port: box.port, privateKey: box.privateKey, knownHostKey: box.hostKeyLine }),
  });
  // An old service the states retire.
  const legacy = box.sh(`printf '${LEGACY_UNIT}' > /etc/systemd/system/rackseed-legacy.service && systemctl daemon-reload && systemctl enable --now rackseed-legacy 2>&1`);
  if (legacy.status !== 0) throw new Error(`starting the legacy unit failed: ${legacy.stdout}`);
}, 180_000);

afterAll(async () => {
  await store?.close();
  await box?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('service states on a real systemd', () => {
  it('a dry run predicts starting, enabling and stopping, and touches nothing', async () => {
    const dry = await run('test');
    expect(changedIds(dry)).toEqual(['boot', 'boot-unit', 'legacy', 'ticker', 'ticker-config', 'ticker-unit']);
    expect(stateOf(dry, 'ticker').changes).toEqual({ 'rackseed-ticker': true, enabled: true });
    expect(stateOf(dry, 'ticker').comment).toMatch(/would be enabled and started/);
    expect(stateOf(dry, 'boot').changes).toEqual({ 'rackseed-boot': true });
    expect(stateOf(dry, 'legacy').changes).toEqual({ 'rackseed-legacy': true, enabled: false });
    expect(box.sh('systemctl is-active rackseed-legacy; systemctl is-enabled rackseed-legacy; test -e /etc/systemd/system/rackseed-ticker.service || echo no-unit').stdout).toBe(
      'active\nenabled\nno-unit\n',
    );
  });

  it('apply does what the dry run predicted', async () => {
    const applied = await run('apply');
    expect(changedIds(applied)).toEqual(['boot', 'boot-unit', 'legacy', 'ticker', 'ticker-config', 'ticker-unit']);
    // Just started: the watch action (a restart) is not run on top of the start, as in Salt.
    expect(stateOf(applied, 'ticker')).toMatchObject({ changes: { 'rackseed-ticker': true, enabled: true }, comment: 'Service rackseed-ticker enabled and started' });
    expect(stateOf(applied, 'legacy').changes).toEqual({ 'rackseed-legacy': true, enabled: false });
    expect(box.sh('for u in rackseed-ticker rackseed-boot rackseed-legacy; do echo "$u $(systemctl is-active $u) $(systemctl is-enabled $u)"; done').stdout).toBe(
      'rackseed-ticker active enabled\nrackseed-boot inactive enabled\nrackseed-legacy inactive disabled\n',
    );
    expect(show('rackseed-ticker', 'Nice')).toBe('0\n');
  });

  it('a second apply and dry run change nothing', async () => {
    const pid = show('rackseed-ticker', 'MainPID');
    for (const mode of ['apply', 'test'] as const) {
      const r = await run(mode);
      expect(r.result).toBe('success');
      expect(changedIds(r)).toEqual([]);
    }
    expect(show('rackseed-ticker', 'MainPID')).toBe(pid);
  });

  it('a changed config file restarts the watching service; a changed unit is reloaded first', async () => {
    const before = show('rackseed-ticker', 'MainPID');
    setPillar({ interval: 7, nice: 0 });
    const dry = await run('test');
    expect(changedIds(dry)).toEqual(['ticker', 'ticker-config']);
    expect(stateOf(dry, 'ticker').comment).toMatch(/watch action would run because file: ticker-config changed/);
    expect(show('rackseed-ticker', 'MainPID')).toBe(before);

    const applied = await run('apply');
    expect(changedIds(applied)).toEqual(['ticker', 'ticker-config']);
    expect(stateOf(applied, 'ticker').changes).toEqual({ 'rackseed-ticker': true });
    expect(stateOf(applied, 'ticker').comment).toMatch(/restarted/);
    const after = show('rackseed-ticker', 'MainPID');
    expect(after).not.toBe(before);
    expect(Number(after)).toBeGreaterThan(0);
    expect(box.sh(`tr '\\0' '\\n' < /proc/${after.trim()}/environ | grep TICKER`).stdout).toBe('TICKER_INTERVAL=7\n');

    // The unit itself changes: the restart must pick up the new unit (daemon-reload first), not the old one.
    setPillar({ interval: 7, nice: 5 });
    const unitChange = await run('apply');
    expect(changedIds(unitChange)).toEqual(['ticker', 'ticker-unit']);
    expect(show('rackseed-ticker', 'Nice')).toBe('5\n');
    expect(show('rackseed-ticker', 'MainPID')).not.toBe(after);
    expect(show('rackseed-ticker', 'NeedDaemonReload')).toBe('no\n');
    expect((await run('test')).result).toBe('success');
  });

  it('a daemon that dies after its restart fails the state with its journal lines; init_delay waits for a slower death', async () => {
    try {
      // Rejects its configuration at once, as a daemon with a bad config line does (Type=simple: the restart succeeds).
      setPillar({ interval: 7, nice: 5, exec: `/bin/sh -c 'echo "ticker: bad interval in line 3" >&2; exit 3'`, initDelay: 1 });
      const [bad] = await states.run([inventory.inventory.nodes.get(box.name)!], 'apply');
      const ticker = stateOf(bad!, 'ticker');
      expect(ticker.result).toBe(false);
      expect(ticker.comment).toMatch(/Service rackseed-ticker was restarted but is not running 1 s later \(failed\): .*ticker: bad interval in line 3/);
      expect(ticker.comment).toMatch(/status=3/);
      // Only this run of the unit: not the stop of the one before.
      expect(ticker.comment).not.toMatch(/Stopping|Deactivated/);
      expect(box.sh('systemctl is-active rackseed-ticker').stdout).toBe('failed\n');

      // Back to a good daemon: the next converge starts it (the unit changed, and it was not running).
      setPillar({ interval: 7, nice: 5 });
      const good = await run('apply');
      expect(stateOf(good, 'ticker').comment).toMatch(/restarted|started/);
      expect(box.sh('systemctl is-active rackseed-ticker').stdout).toBe('active\n');

      // Dies two seconds after its start: init_delay 4 catches it.
      setPillar({ interval: 7, nice: 5, exec: `/bin/sh -c 'sleep 2; echo "ticker: lost its license server" >&2; exit 4'`, initDelay: 4 });
      const [late] = await states.run([inventory.inventory.nodes.get(box.name)!], 'apply');
      expect(stateOf(late!, 'ticker').comment).toMatch(/Service rackseed-ticker was restarted but is not running 4 s later \(failed\): .*lost its license server/);
    } finally {
      await restoreTicker();
    }
    expect(box.sh('systemctl is-active rackseed-ticker').stdout).toBe('active\n');
  });

  it('what a daemon wrote just before it died is in the comment, also when journald reads it after the death', async () => {
    let converge: Promise<NodeRunReport[]> | undefined;
    try {
      // journald takes a line's invocation ID from /proc when it reads the line; on a loaded node it reads a dying
      // daemon's last words after the exit, so they carry the unit and the PID but no invocation ID. Stopping
      // journald until the daemon is dead makes that happen every time.
      const journald = box.sh('pidof systemd-journald').stdout.trim();
      expect(journald).toMatch(/^\d+$/);
      setPillar({ interval: 7, nice: 5, exec: `/bin/sh -c 'echo "ticker: license server gone" >&2; exit 4'`, initDelay: 3 });
      try {
        expect(box.sh(`kill -STOP ${journald}`).status).toBe(0);
        converge = states.run([inventory.inventory.nodes.get(box.name)!], 'apply');
        await waitFor('the ticker to die', () => box.sh('systemctl is-active rackseed-ticker').stdout === 'failed\n', 20_000, 100);
      } finally {
        box.sh(`kill -CONT ${journald}`);
      }
      const [report] = (await converge)!;
      const ticker = stateOf(report!, 'ticker');
      expect(ticker.result).toBe(false);
      expect(ticker.comment).toMatch(/Service rackseed-ticker was restarted but is not running 3 s later \(failed\): .*ticker: license server gone/);
      // The situation this test is about did happen: the line has the unit but no invocation ID.
      const line = box.sh('journalctl -o export "MESSAGE=ticker: license server gone"').stdout;
      expect(line).toContain('_SYSTEMD_UNIT=rackseed-ticker.service');
      expect(line).not.toContain('_SYSTEMD_INVOCATION_ID=');
    } finally {
      await converge?.catch(() => undefined);
      await restoreTicker();
    }
    expect(box.sh('systemctl is-active rackseed-ticker').stdout).toBe('active\n');
  });

  it('restarts beyond systemd\'s start rate limit still happen: each converge restarts the service, reset-failed when refused', async () => {
    // Two starts an hour: the first restart below may pass, the later ones are refused by systemd without the retry.
    const limit = box.sh(
      'mkdir -p /etc/systemd/system/rackseed-ticker.service.d && ' +
        "printf '[Unit]\\nStartLimitIntervalSec=3600\\nStartLimitBurst=2\\n' > /etc/systemd/system/rackseed-ticker.service.d/limit.conf && " +
        'systemctl daemon-reload && systemctl show -p StartLimitBurst --value rackseed-ticker',
    );
    expect(limit.stdout).toBe('2\n');
    const comments: string[] = [];
    for (const interval of [8, 9, 10]) {
      const before = show('rackseed-ticker', 'MainPID');
      setPillar({ interval, nice: 5 });
      const applied = await run('apply');
      expect(changedIds(applied), JSON.stringify(applied.states.map((x) => [x.id, x.result, x.comment]))).toEqual(['ticker', 'ticker-config']);
      comments.push(stateOf(applied, 'ticker').comment);
      expect(show('rackseed-ticker', 'MainPID')).not.toBe(before);
      expect(box.sh('systemctl is-active rackseed-ticker').stdout).toBe('active\n');
    }
    expect(comments.filter((c) => c.includes("systemd's start rate limit was reached")).length).toBeGreaterThan(0);
    expect(comments.every((c) => c.includes('restarted'))).toBe(true);
  });
});
