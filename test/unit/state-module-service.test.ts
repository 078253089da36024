import { describe, expect, it } from 'vitest';

import { builtinModules } from '../../server/state/modules/index.js';
import { parseServiceStatus, serviceProbe } from '../../server/state/modules/service.js';
import type { StateFunction } from '../../server/state/types.js';
import { context, fakeNode, state } from '../fixtures/state-modules/harness.js';

const fn = (name: string): StateFunction => builtinModules().get(name)!;
const PROBE = /^printf 'active=%s\\nenabled=%s\\nreload=%s\\n'/;
const status = (active: string, enabled: string, reload = 'no') => ({ stdout: `active=${active}\nenabled=${enabled}\nreload=${reload}\n` });
/** The probe after a start or restart, which also reads the unit's journal. */
const CONFIRM = /--rackseed-journal--/;
const afterStart = (active: string, journal = '') => ({ stdout: `active=${active}\nenabled=enabled\nreload=no\n--rackseed-journal--\n${journal}` });
const RUNNING: [RegExp, { stdout: string }] = [CONFIRM, afterStart('active')];

describe('service status probe', () => {
  it('asks is-active, is-enabled and NeedDaemonReload in one command, quoting the unit', () => {
    expect(serviceProbe('nginx')).toBe(
      `printf 'active=%s\\nenabled=%s\\nreload=%s\\n' "$(systemctl is-active -- 'nginx' 2>/dev/null)" "$(systemctl is-enabled -- 'nginx' 2>/dev/null)" "$(systemctl show -p NeedDaemonReload --value -- 'nginx' 2>/dev/null)"`,
    );
  });

  it('parses the words (empty when systemd gave no answer)', () => {
    expect(parseServiceStatus('active=active\nenabled=enabled\nreload=no\n')).toEqual({ active: 'active', enabled: 'enabled', needsReload: false });
    expect(parseServiceStatus('active=\nenabled=\nreload=\n')).toEqual({ active: '', enabled: '', needsReload: false });
  });
});

describe('service.running', () => {
  it.each([
    ['active', 'enabled', { enable: true }, true, {}],
    ['active', 'static', { enable: true }, true, {}],
    ['active', 'disabled', {}, true, {}],
    ['inactive', 'enabled', {}, false, { nginx: true }],
    ['failed', 'disabled', { enable: true }, false, { nginx: true, enabled: true }],
    ['active', 'disabled', { enable: true }, false, { enabled: true }],
  ])('active=%s enabled=%s args=%j -> inSync %s, changes %j', async (active, enabled, args, synced, changes) => {
    const node = fakeNode([[PROBE, status(active, enabled)]]);
    const outcome = await fn('service.running').check(state('service.running', 'nginx', args), context(node));
    expect(node.commands).toHaveLength(1);
    expect(outcome.inSync).toBe(synced);
    expect(outcome.changes).toEqual(changes);
  });

  it('enables and starts in one command, with daemon-reload first when systemd asks for it', async () => {
    const node = fakeNode([RUNNING, [PROBE, status('inactive', 'disabled', 'yes')]]);
    const s = state('service.running', 'slurmd', { enable: true });
    const ctx = context(node);
    const outcome = await fn('service.running').apply(s, ctx, await fn('service.running').check(s, ctx));
    expect(node.commands.slice(1, 2)).toEqual(["systemctl daemon-reload && systemctl enable -- 'slurmd' && systemctl start -- 'slurmd'"]);
    // Then confirmed at once (no init_delay): still running, and the journal asked for in the same round trip.
    expect(node.commands).toHaveLength(3);
    expect(node.commands[2]!.startsWith(`${serviceProbe('slurmd')}; echo '--rackseed-journal--'; id="$(systemctl show -p InvocationID --value -- 'slurmd' 2>/dev/null)"; `)).toBe(true);
    // Also the lines journald read after the daemon had exited: they have its unit and PID but no invocation ID.
    expect(node.commands[2]).toContain(`unit="$(systemctl show -p Id --value -- 'slurmd' 2>/dev/null)"; pid="$(systemctl show -p ExecMainPID --value -- 'slurmd' 2>/dev/null)"; `);
    expect(node.commands[2]).toContain('journalctl -n 8 --no-pager -o cat "_SYSTEMD_INVOCATION_ID=$id" + "INVOCATION_ID=$id" + "_SYSTEMD_UNIT=$unit" "_PID=${pid:-0}"');
    expect(outcome).toEqual({ result: true, changes: { enabled: true, slurmd: true }, comment: 'Service slurmd enabled and started' });
  });

  it('unmasks a masked unit before enabling it', async () => {
    const node = fakeNode([RUNNING, [PROBE, status('inactive', 'masked')]]);
    const s = state('service.running', 'munge', { enable: true });
    const ctx = context(node);
    await fn('service.running').apply(s, ctx, await fn('service.running').check(s, ctx));
    expect(node.commands[1]).toBe("systemctl unmask -- 'munge' && systemctl enable -- 'munge' && systemctl start -- 'munge'");
  });

  it('fails with systemctl\'s message when the start fails', async () => {
    const node = fakeNode([
      [PROBE, status('inactive', 'enabled')],
      [/systemctl start/, { code: 1, stderr: 'Job for nginx.service failed because the control process exited with error code.\n' }],
    ]);
    const s = state('service.running', 'nginx');
    const ctx = context(node);
    const outcome = await fn('service.running').apply(s, ctx, await fn('service.running').check(s, ctx));
    expect(outcome.result).toBe(false);
    expect(outcome.comment).toContain('control process exited with error code');
  });

  it('notes a unit systemd does not know yet (a package earlier in the run may install it)', async () => {
    const node = fakeNode([[PROBE, status('inactive', '')]]);
    const outcome = await fn('service.running').check(state('service.running', 'slurmctld'), context(node));
    expect(outcome.comment).toBe('Service slurmctld would be started (unit slurmctld is not known to systemd yet)');
  });

  it('watch restarts, or reloads with reload: true', async () => {
    const node = fakeNode([RUNNING]);
    const restarted = await fn('service.running').watch!(state('service.running', 'nginx'), context(node));
    expect(restarted).toEqual({ result: true, changes: { nginx: true }, comment: 'Service nginx restarted' });
    expect(node.commands[0]).toBe(
      `if [ "$(systemctl show -p NeedDaemonReload --value -- 'nginx' 2>/dev/null)" = yes ]; then systemctl daemon-reload; fi; systemctl restart -- 'nginx'`,
    );
    expect(node.commands[1]).toMatch(CONFIRM);
    const reloaded = await fn('service.running').watch!(state('service.running', 'nginx', { reload: true }), context(node));
    expect(reloaded.comment).toBe('Service nginx reloaded');
    expect(node.commands[2]).toMatch(/systemctl reload-or-restart -- 'nginx'$/);
  });

  it('a restart refused by systemd\'s start rate limit is retried once after reset-failed, and says so', async () => {
    const tooOften = { code: 1, stderr: 'Job for slurmctld.service failed because start of the service was attempted too often.\n' };
    const node = fakeNode([
      RUNNING,
      [/reset-failed/, {}],
      [/systemctl restart/, tooOften],
      [/-p Result/, { stdout: 'start-limit-hit\n' }],
    ]);
    const outcome = await fn('service.running').watch!(state('service.running', 'slurmctld'), context(node));
    expect(node.commands.slice(1, 3)).toEqual(["systemctl show -p Result --value -- 'slurmctld'", "systemctl reset-failed -- 'slurmctld' && systemctl restart -- 'slurmctld'"]);
    expect(node.commands[3]).toMatch(CONFIRM);
    expect(outcome).toEqual({
      result: true,
      changes: { slurmctld: true },
      comment: "Service slurmctld restarted (systemd's start rate limit was reached by earlier restarts: reset-failed first)",
    });
  });

  it.each([
    ['the unit failed for another reason', 'exit-code', false, 2],
    ['the retry fails too', 'start-limit-hit', true, 3],
  ])('a failed restart stays a failure when %s', async (_why, result, retryFails, commands) => {
    const node = fakeNode([
      [/reset-failed/, retryFails ? { code: 1, stderr: 'Job for ticker.service failed.\n' } : {}],
      [/systemctl restart/, { code: 1, stderr: 'Job for ticker.service failed.\n' }],
      [/-p Result/, { stdout: `${result}\n` }],
    ]);
    const outcome = await fn('service.running').watch!(state('service.running', 'ticker'), context(node));
    expect(outcome.result).toBe(false);
    expect(outcome.comment).toMatch(/^systemctl restart ticker failed \(exit 1: Job for ticker.service failed.\)/);
    expect(node.commands).toHaveLength(commands);
  });

  it('a daemon that exits right after its start fails the state, with what it wrote to the journal', async () => {
    const journal = 'error: Parse error in file /etc/slurm/slurm.conf line 3: "NodeNme=x"\nfatal: Unable to process configuration file\nslurmd.service: Main process exited, code=exited, status=1/FAILURE\n';
    const node = fakeNode([[CONFIRM, afterStart('failed', journal)], [PROBE, status('inactive', 'enabled')]]);
    const s = state('service.running', 'slurmd');
    const ctx = context(node);
    const outcome = await fn('service.running').apply(s, ctx, await fn('service.running').check(s, ctx));
    expect(outcome).toEqual({
      result: false,
      changes: {},
      comment:
        'Service slurmd was started but is not running (failed): error: Parse error in file /etc/slurm/slurm.conf line 3: "NodeNme=x" | fatal: Unable to process configuration file | slurmd.service: Main process exited, code=exited, status=1/FAILURE',
    });
  });

  it('init_delay waits that many seconds before the check, on the node, with the command timeout stretched by as much', async () => {
    const timeouts: Array<number | undefined> = [];
    const node = fakeNode([[CONFIRM, afterStart('activating', 'rackseed-ticker.service: Scheduled restart job, restart counter is at 3.\n')]]);
    const exec = node.exec.bind(node);
    node.exec = (command, options = {}) => {
      timeouts.push(options.timeoutMs);
      return exec(command, options);
    };
    const outcome = await fn('service.running').watch!(state('service.running', 'rackseed-ticker', { init_delay: 2.5 }), context(node));
    expect(node.commands[1]).toMatch(/^sleep 2\.5; printf 'active=/);
    expect(timeouts).toEqual([120_000, 122_500]);
    expect(outcome.result).toBe(false);
    expect(outcome.comment).toBe(
      'Service rackseed-ticker was restarted but is not running 2.5 s later (activating): rackseed-ticker.service: Scheduled restart job, restart counter is at 3.',
    );
  });

  it('says so when systemd gives no answer after the start', async () => {
    const node = fakeNode([[CONFIRM, { stdout: '', code: 255 }]]);
    const outcome = await fn('service.running').watch!(state('service.running', 'nginx', { reload: true }), context(node));
    expect(outcome.comment).toBe('Service nginx was reloaded but is not running (no answer from systemd)');
  });

  it.each([[-1], ['2'], [601]])('refuses init_delay %j', (value) => {
    expect(fn('service.running').validate!({ init_delay: value }).join()).toMatch(/init_delay/);
  });

  it('rejects a service name that is not one word', async () => {
    await expect(fn('service.running').check(state('service.running', 'nginx; reboot'), context(fakeNode([])))).rejects.toThrow(/name:/);
  });
});

describe('service.dead, enabled, disabled', () => {
  it('stops and disables', async () => {
    const node = fakeNode([[PROBE, status('active', 'enabled')]]);
    const s = state('service.dead', 'apache2', { enable: false });
    const ctx = context(node);
    const checked = await fn('service.dead').check(s, ctx);
    expect(checked.changes).toEqual({ apache2: true, enabled: false });
    await fn('service.dead').apply(s, ctx, checked);
    expect(node.commands.at(-1)).toBe("systemctl disable -- 'apache2' && systemctl stop -- 'apache2'");
  });

  it('enabled and disabled look only at is-enabled', async () => {
    const node = fakeNode([[PROBE, status('inactive', 'enabled')]]);
    expect((await fn('service.enabled').check(state('service.enabled', 'chrony'), context(node))).inSync).toBe(true);
    const s = state('service.disabled', 'chrony');
    const checked = await fn('service.disabled').check(s, context(node));
    expect(checked.changes).toEqual({ chrony: true });
    await fn('service.disabled').apply(s, context(node), checked);
    expect(node.commands.at(-1)).toBe("systemctl disable -- 'chrony'");
  });
});
