import { describe, expect, it } from 'vitest';

import { bounded } from '../../server/state/modules/cmd.js';
import { builtinModules } from '../../server/state/modules/index.js';
import { deviceMatches, fstabLine, parseFindmnt, withFstabEntry } from '../../server/state/modules/mount.js';
import { configuredValue, withValue } from '../../server/state/modules/sysctl.js';
import type { StateFunction } from '../../server/state/types.js';
import { context, fakeNode, sections, state } from '../fixtures/state-modules/harness.js';

const fn = (name: string): StateFunction => builtinModules().get(name)!;

describe('cmd.run', () => {
  it('always would run, runs nothing in check, and reports retcode/stdout/stderr', async () => {
    const node = fakeNode([[/echo/, { stdout: 'hello\n', stderr: '' }]]);
    const s = state('cmd.run', 'echo hello');
    const ctx = context(node);
    const checked = await fn('cmd.run').check(s, ctx);
    // The predicted change is the command (as Salt 3006 reports it), so onchanges/watch on it are predicted too.
    expect(checked).toEqual({ inSync: false, changes: { cmd: 'echo hello' }, comment: 'Command "echo hello" would have been executed' });
    expect(node.commands).toEqual([]);
    const outcome = await fn('cmd.run').apply(s, ctx, checked);
    expect(node.commands).toEqual(["'/bin/sh' -c 'echo hello'"]);
    expect(outcome).toEqual({ result: true, changes: { retcode: 0, stdout: 'hello', stderr: '' }, comment: 'Command "echo hello" run' });
  });

  it('passes cwd, env and runas as quoted words and fails on a non-zero exit', async () => {
    const node = fakeNode([[/./, { code: 3, stderr: 'boom\n' }]]);
    const s = state('cmd.run', "make install PREFIX='/opt/x'", { cwd: '/srv/src dir', env: [{ CC: 'gcc; reboot' }], runas: 'build' });
    const outcome = await fn('cmd.run').apply(s, context(node), { inSync: false, changes: {}, comment: '' });
    expect(node.commands[0]).toBe(
      "cd -- '/srv/src dir' && runuser -u 'build' -- env 'CC=gcc; reboot' '/bin/sh' -c 'make install PREFIX='\\''/opt/x'\\'''",
    );
    expect(outcome).toEqual({ result: false, changes: { retcode: 3, stdout: '', stderr: 'boom' }, comment: `Command "make install PREFIX='/opt/x'" failed with exit code 3` });
  });

  it('bounds long output, keeping head and tail', () => {
    const long = `${'a'.repeat(6000)}${'z'.repeat(6000)}`;
    const out = bounded(long);
    expect(out.startsWith('a'.repeat(4096))).toBe(true);
    expect(out.endsWith('z'.repeat(4096))).toBe(true);
    expect(out).toContain('(3808 characters left out)');
  });

  it('validates its args', () => {
    expect(fn('cmd.run').validate!({ stateful: true })).toEqual(['stateful: stateful is not supported']);
    expect(fn('cmd.run').validate!({ env: { 'BAD-NAME': 'x' } })[0]).toMatch(/^env: /);
    expect(fn('cmd.run').validate!({ cwd: '/tmp', timeout: 30 })).toEqual([]);
  });
});

describe('sysctl.present', () => {
  const conf = '# rackseed\nvm.swappiness = 10\nnet.ipv4.ip_forward=0\n';

  it('reads the runtime value and the persisted file in one probe', async () => {
    const node = fakeNode([[/sysctl -n/, { stdout: sections({ runtime: ['1', 0], config: [conf, 0] }) }]]);
    const outcome = await fn('sysctl.present').check(state('sysctl.present', 'net.ipv4.ip_forward', { value: 1 }), context(node));
    expect(node.commands).toHaveLength(1);
    expect(node.commands[0]).toContain("sysctl -n -- 'net.ipv4.ip_forward'");
    expect(node.commands[0]).toContain("cat -- '/etc/sysctl.d/99-rackseed.conf'");
    expect(outcome).toEqual({
      inSync: false,
      changes: { 'net.ipv4.ip_forward': '1' },
      comment: 'Sysctl net.ipv4.ip_forward would be persisted in /etc/sysctl.d/99-rackseed.conf',
    });
  });

  it('compares multi-value keys with whitespace normalised', async () => {
    const node = fakeNode([[/sysctl -n/, { stdout: sections({ runtime: ['4096\t131072\t6291456', 0], config: ['net.ipv4.tcp_rmem = 4096 131072  6291456\n', 0] }) }]]);
    const outcome = await fn('sysctl.present').check(state('sysctl.present', 'net.ipv4.tcp_rmem', { value: '4096 131072 6291456' }), context(node));
    expect(outcome.inSync).toBe(true);
  });

  it('writes the file (replacing the key in place) and runs sysctl -w', async () => {
    const node = fakeNode([[/sysctl -n/, { stdout: sections({ runtime: ['60', 0], config: [conf, 0] }) }]]);
    const s = state('sysctl.present', 'vm.swappiness', { value: 1 });
    const ctx = context(node);
    const outcome = await fn('sysctl.present').apply(s, ctx, await fn('sysctl.present').check(s, ctx));
    expect(node.calls.slice(1)).toEqual([
      { op: 'writeFile', path: '/etc/sysctl.d/99-rackseed.conf', data: '# rackseed\nvm.swappiness = 1\nnet.ipv4.ip_forward=0\n', options: { mode: '0644' } },
      { op: 'exec', command: "sysctl -q -w -- 'vm.swappiness=1'" },
    ]);
    expect(outcome).toEqual({ result: true, changes: { 'vm.swappiness': '1' }, comment: 'Sysctl vm.swappiness set to 1' });
  });

  it('with apply_runtime: false only persists (sysctl-as-file) and never runs sysctl', async () => {
    const node = fakeNode([[/cat --/, { stdout: sections({ config: ['', 1] }) }]]);
    const s = state('sysctl.present', 'kernel.pid_max', { value: 4194304, apply_runtime: false, config: '/etc/sysctl.d/50-hpc.conf' });
    const ctx = context(node);
    const checked = await fn('sysctl.present').check(s, ctx);
    expect(node.commands[0]).not.toMatch(/sysctl -/);
    await fn('sysctl.present').apply(s, ctx, checked);
    expect(node.commands.slice(1)).toEqual(["mkdir -p -- '/etc/sysctl.d'"]);
    expect(node.files.get('/etc/sysctl.d/50-hpc.conf')?.data.toString()).toBe('kernel.pid_max = 4194304\n');
  });

  it('a glob key is persisted with apply_runtime: false, and refused at runtime with the way out (sysctl(8) reads no globs)', async () => {
    const node = fakeNode([[/cat --/, { stdout: sections({ config: ['', 1] }) }]]);
    const ctx = context(node);
    await expect(fn('sysctl.present').check(state('sysctl.present', 'net.ipv4.conf.*.rp_filter', { value: 1 }), ctx)).rejects.toThrow(
      'sysctl cannot read or set net.ipv4.conf.*.rp_filter at runtime (a glob): set apply_runtime: false to persist it in /etc/sysctl.d/99-rackseed.conf, which systemd-sysctl expands at boot',
    );
    const s = state('sysctl.present', 'net.ipv4.conf.*.rp_filter', { value: 1, apply_runtime: false });
    const checked = await fn('sysctl.present').check(s, ctx);
    await fn('sysctl.present').apply(s, ctx, checked);
    expect(node.files.get('/etc/sysctl.d/99-rackseed.conf')?.data.toString()).toBe('net.ipv4.conf.*.rp_filter = 1\n');
  });

  it('reports a failed sysctl -w with a hint, keeping what was persisted', async () => {
    const node = fakeNode([
      [/sysctl -n/, { stdout: sections({ runtime: ['0', 0], config: ['', 1] }) }],
      [/sysctl -q -w/, { code: 255, stderr: 'sysctl: permission denied on key "vm.overcommit_memory"\n' }],
    ]);
    const s = state('sysctl.present', 'vm.overcommit_memory', { value: 1 });
    const ctx = context(node);
    const outcome = await fn('sysctl.present').apply(s, ctx, await fn('sysctl.present').check(s, ctx));
    expect(outcome.result).toBe(false);
    expect(outcome.comment).toContain('apply_runtime: false');
  });

  it('parses and edits sysctl.d text', () => {
    expect(configuredValue('a.b = 1\n# a.b = 2\na/b=3\n', 'a.b')).toBe('3');
    expect(withValue('a.b = 1\nc = 2\na.b = 9\n', 'a.b', '5')).toBe('a.b = 5\nc = 2\n');
    expect(withValue('', 'a.b', '5')).toBe('a.b = 5\n');
  });
});

describe('kmod.present', () => {
  it('looks at /proc/modules, /sys/module and the persistence file in one probe', async () => {
    const node = fakeNode([[/proc\/modules/, { stdout: sections({ modules: ['ext4\nib_ipoib\nmlx5_core', 0], builtin: ['', 0], persist: ['ib_ipoib\n', 0] }) }]]);
    const outcome = await fn('kmod.present').check(state('kmod.present', 'ib-ipoib', { persist: true }), context(node));
    expect(outcome.inSync).toBe(true);
    expect(node.commands[0]).toContain("cat -- '/etc/modules-load.d/ib-ipoib.conf'");
  });

  it('loads with modprobe and persists to modules-load.d', async () => {
    const node = fakeNode([[/proc\/modules/, { stdout: sections({ modules: ['ext4', 0], builtin: ['', 1], persist: ['', 1] }) }]]);
    const s = state('kmod.present', 'br_netfilter', { persist: true });
    const ctx = context(node);
    const checked = await fn('kmod.present').check(s, ctx);
    expect(checked.changes).toEqual({ br_netfilter: 'loaded', persist: '/etc/modules-load.d/br_netfilter.conf' });
    const outcome = await fn('kmod.present').apply(s, ctx, checked);
    expect(node.commands.at(-1)).toBe("mkdir -p -- '/etc/modules-load.d' && modprobe -- 'br_netfilter'");
    expect(node.files.get('/etc/modules-load.d/br_netfilter.conf')?.data.toString()).toBe('br_netfilter\n');
    expect(outcome.result).toBe(true);
  });

  it('with apply_runtime: false never runs modprobe', async () => {
    const node = fakeNode([[/modules-load/, { stdout: sections({ persist: ['', 1] }) }]]);
    const s = state('kmod.present', 'overlay', { persist: true, apply_runtime: false });
    const ctx = context(node);
    await fn('kmod.present').apply(s, ctx, await fn('kmod.present').check(s, ctx));
    expect(node.everythingSent).not.toContain('modprobe');
  });
});

describe('user.present and group.present', () => {
  // Real `getent passwd` and `id` output shapes from Debian 12.
  const probe = (passwd: string, primary: string, groups: string, code = 0) => ({
    stdout: sections({ passwd: [passwd, code], primary: [primary, code], groups: [groups, code] }),
  });

  it('creates a missing user with useradd in one command', async () => {
    const node = fakeNode([[/getent passwd/, probe('', '', '', 2)]]);
    const s = state('user.present', 'slurm', { uid: 64030, gid: 'slurm', home: '/var/lib/slurm', shell: '/usr/sbin/nologin', groups: ['munge'], system: true });
    const ctx = context(node);
    const checked = await fn('user.present').check(s, ctx);
    expect(checked.changes).toEqual({ name: 'slurm', uid: 64030, gid: 'slurm', home: '/var/lib/slurm', shell: '/usr/sbin/nologin', groups: ['munge'] });
    await fn('user.present').apply(s, ctx, checked);
    expect(node.commands.at(-1)).toBe("useradd -u '64030' -g 'slurm' -d '/var/lib/slurm' -s '/usr/sbin/nologin' -G 'munge' -m -r -- 'slurm'");
  });

  it('is in sync when passwd and groups match', async () => {
    const node = fakeNode([[/getent passwd/, probe('alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash', 'alice', 'alice sudo users')]]);
    const s = state('user.present', 'alice', { uid: 1000, gid: 1000, shell: '/bin/bash', fullname: 'Alice', groups: 'users,sudo' });
    expect((await fn('user.present').check(s, context(node))).inSync).toBe(true);
  });

  it('is in sync when groups also lists the primary group (it is no supplementary group), with or without remove_groups', async () => {
    const node = fakeNode([[/getent passwd/, probe('slurm:x:64030:64030::/var/lib/slurm:/usr/sbin/nologin', 'slurm', 'slurm video')]]);
    for (const extra of [{}, { remove_groups: false }]) {
      const s = state('user.present', 'slurm', { gid: 'slurm', groups: ['slurm', 'video'], ...extra });
      expect((await fn('user.present').check(s, context(node))).inSync).toBe(true);
    }
  });

  it('updates changed fields with usermod; groups exact by default, appended with remove_groups: false', async () => {
    const node = fakeNode([[/getent passwd/, probe('alice:x:1000:1000::/home/alice:/bin/sh', 'alice', 'alice users cdrom')]]);
    const exact = state('user.present', 'alice', { shell: '/bin/bash', groups: ['users', 'sudo'] });
    const ctx = context(node);
    const checked = await fn('user.present').check(exact, ctx);
    expect(checked.changes).toEqual({ shell: '/bin/bash', groups: ['sudo', 'users'] });
    await fn('user.present').apply(exact, ctx, checked);
    expect(node.commands.at(-1)).toBe("usermod -s '/bin/bash' -G 'sudo,users' -- 'alice'");

    const append = state('user.present', 'alice', { groups: ['sudo'], remove_groups: false });
    const checkedAppend = await fn('user.present').check(append, ctx);
    expect(checkedAppend.changes).toEqual({ groups: ['cdrom', 'sudo', 'users'] });
    await fn('user.present').apply(append, ctx, checkedAppend);
    expect(node.commands.at(-1)).toBe("usermod -a -G 'sudo' -- 'alice'");
  });

  it('changes only the full name (GECOS field 1) and keeps the room and phone fields; refuses a comma in it', async () => {
    const node = fakeNode([[/getent passwd/, probe('alice:x:1000:1000:Alice,R101,555-0101,,:/home/alice:/bin/bash', 'alice', 'alice')]]);
    const s = state('user.present', 'alice', { fullname: 'Alice Liddell' });
    const checked = await fn('user.present').check(s, context(node));
    expect(checked.changes).toEqual({ fullname: 'Alice Liddell' });
    await fn('user.present').apply(s, context(node), checked);
    expect(node.commands.at(-1)).toBe("usermod -c 'Alice Liddell,R101,555-0101,,' -- 'alice'");
    const settled = fakeNode([[/getent passwd/, probe('alice:x:1000:1000:Alice Liddell,R101,555-0101,,:/home/alice:/bin/bash', 'alice', 'alice')]]);
    expect((await fn('user.present').check(s, context(settled))).inSync).toBe(true);
    // A comma would start the room-number field: the name read back would never equal it, so every run would change it.
    expect(fn('user.present').validate!({ fullname: 'Liddell, Alice' })[0]).toMatch(/^fullname: may not contain ":", "," or a newline/);
  });

  it('creates and updates groups, with exact members', async () => {
    const missing = fakeNode([[/getent group/, { code: 2 }]]);
    const s = state('group.present', 'munge', { gid: 990, system: true, members: ['slurm'] });
    const checked = await fn('group.present').check(s, context(missing));
    expect(missing.commands[0]).toBe("getent group -- 'munge'");
    expect(checked.changes).toEqual({ name: 'munge', gid: 990, members: ['slurm'] });
    await fn('group.present').apply(s, context(missing), checked);
    expect(missing.commands.at(-1)).toBe("groupadd -g '990' -r -- 'munge' && gpasswd -M 'slurm' -- 'munge'");

    const present = fakeNode([[/getent group/, { stdout: 'munge:x:991:slurm\n' }]]);
    const update = await fn('group.present').check(s, context(present));
    expect(update.changes).toEqual({ gid: 990 });
    await fn('group.present').apply(s, context(present), update);
    expect(present.commands.at(-1)).toBe("groupmod -g '990' -- 'munge'");
    const same = fakeNode([[/getent group/, { stdout: 'munge:x:990:slurm\n' }]]);
    expect((await fn('group.present').check(s, context(same))).inSync).toBe(true);
  });

  it('rejects names that are not account names', () => {
    expect(fn('user.present').validate!({ name: '-o', groups: ['ok', 'bad name'] })).toEqual([
      'name: a user or group name may not start with "-"',
      'groups.1: a user or group name may not contain whitespace',
    ]);
    const problems = fn('group.present').validate!({ name: 'root:x', gid: -1 });
    expect(problems[0]).toBe('name: not a valid user or group name');
    expect(problems[1]).toMatch(/^gid: /);
    expect(problems).toHaveLength(2);
  });
});

describe('mount.mounted', () => {
  // Real `findmnt -n -P -o SOURCE,FSTYPE,OPTIONS,UUID,LABEL,PARTUUID,PARTLABEL --mountpoint /` output shape.
  const mounted = 'SOURCE="/dev/sdb1" FSTYPE="ext4" OPTIONS="rw,relatime" UUID="3f1c0b2e-9d7a-4c55-8e0e-2a7d6f1b9c11" LABEL="scratch" PARTUUID="" PARTLABEL=""';
  const fstab = '# /etc/fstab\nUUID=abcd / ext4 errors=remount-ro 0 1\n';

  it('parses findmnt pairs and matches devices by path or tag', () => {
    const fields = parseFindmnt(`${mounted}\n`)!;
    expect(fields.SOURCE).toBe('/dev/sdb1');
    expect(deviceMatches('UUID=3f1c0b2e-9d7a-4c55-8e0e-2a7d6f1b9c11', fields)).toBe(true);
    expect(deviceMatches('LABEL=scratch', fields)).toBe(true);
    expect(deviceMatches('/dev/sdc1', fields)).toBe(false);
    expect(parseFindmnt('SOURCE="srv:/export\\x20x" FSTYPE="nfs4"')!.SOURCE).toBe('srv:/export x');
  });

  it('mounts and persists a missing mount in one command plus one fstab write', async () => {
    const node = fakeNode([[/findmnt/, { stdout: sections({ mounted: ['', 1], fstab: [fstab, 0], dir: ['', 1] }) }]]);
    const s = state('mount.mounted', '/scratch', { device: 'LABEL=scratch', fstype: 'ext4', opts: ['noatime', 'nofail'], mkmnt: true, pass_num: 2 });
    const ctx = context(node);
    const checked = await fn('mount.mounted').check(s, ctx);
    expect(checked.changes).toEqual({ mount: true, persist: 'new' });
    await fn('mount.mounted').apply(s, ctx, checked);
    expect(node.commands.at(-1)).toBe("mkdir -p -- '/scratch' && mount -t 'ext4' -o 'noatime,nofail' -- 'LABEL=scratch' '/scratch'");
    expect(node.files.get('/etc/fstab')?.data.toString()).toBe(`${fstab}LABEL=scratch /scratch ext4 noatime,nofail 0 2\n`);
  });

  it('remounts when an option is missing, ignoring fstab-only options', async () => {
    const line = fstabLine('/scratch', { device: '/dev/sdb1', fstype: 'ext4', opts: ['rw', 'noatime', 'nofail'] });
    const node = fakeNode([[/findmnt/, { stdout: sections({ mounted: [mounted, 0], fstab: [`${fstab}${line}\n`, 0], dir: ['', 0] }) }]]);
    const s = state('mount.mounted', '/scratch', { device: '/dev/sdb1', fstype: 'ext4', opts: 'rw,noatime,nofail' });
    const ctx = context(node);
    const checked = await fn('mount.mounted').check(s, ctx);
    expect(checked.changes).toEqual({ remount: 'noatime' });
    await fn('mount.mounted').apply(s, ctx, checked);
    expect(node.commands.at(-1)).toBe("mount -o 'remount,rw,noatime,nofail' -- '/scratch'");
  });

  it('kernel defaults (exec, suid, dev, async) hold while their negation is absent: no remount on every run; a negation present is missing them', async () => {
    const opts = ['rw', 'noatime', 'exec', 'suid', 'dev', 'async', 'nofail'];
    const line = fstabLine('/scratch', { device: '/dev/sdb1', fstype: 'ext4', opts });
    const settled = 'SOURCE="/dev/sdb1" FSTYPE="ext4" OPTIONS="rw,noatime" UUID="" LABEL="scratch" PARTUUID="" PARTLABEL=""';
    const node = fakeNode([[/findmnt/, { stdout: sections({ mounted: [settled, 0], fstab: [`${fstab}${line}\n`, 0], dir: ['', 0] }) }]]);
    const s = state('mount.mounted', '/scratch', { device: '/dev/sdb1', fstype: 'ext4', opts });
    expect((await fn('mount.mounted').check(s, context(node))).inSync).toBe(true);
    const noexec = settled.replace('rw,noatime', 'rw,noexec,noatime');
    const again = fakeNode([[/findmnt/, { stdout: sections({ mounted: [noexec, 0], fstab: [`${fstab}${line}\n`, 0], dir: ['', 0] }) }]]);
    expect((await fn('mount.mounted').check(s, context(again))).changes).toEqual({ remount: 'exec' });
  });

  it('refuses a mount point that holds another device', async () => {
    const node = fakeNode([[/findmnt/, { stdout: sections({ mounted: [mounted, 0], fstab: ['', 0], dir: ['', 0] }) }]]);
    await expect(fn('mount.mounted').check(state('mount.mounted', '/scratch', { device: '/dev/sdc1', fstype: 'ext4' }), context(node))).rejects.toThrow(/unmount it first/);
  });

  it('rewrites an outdated fstab entry in place, escaping spaces', () => {
    const text = 'a / ext4 defaults 0 1\n/dev/old /data\\040dir xfs defaults 0 0\n';
    const line = fstabLine('/data dir', { device: '/dev/new', fstype: 'xfs' });
    expect(line).toBe('/dev/new /data\\040dir xfs defaults 0 0');
    expect(withFstabEntry(text, '/data dir', line)).toEqual({ same: false, existed: true, text: `a / ext4 defaults 0 1\n${line}\n` });
    expect(withFstabEntry(`${line}\n`, '/data dir', line).same).toBe(true);
  });
});
