import { describe, expect, it } from 'vitest';

import { builtinModules } from '../../server/state/modules/index.js';
import { parseAptPolicy, parseDpkgQuery } from '../../server/state/modules/pkg-apt.js';
import { isLocked, parseCheckUpdate, parseRpmQuery } from '../../server/state/modules/pkg-dnf.js';
import { versionMatches } from '../../server/state/modules/pkg-version.js';
import type { StateFunction } from '../../server/state/types.js';
import { context, fakeNode, sections, state } from '../fixtures/state-modules/harness.js';

const registry = builtinModules();
const fn = (name: string): StateFunction => registry.get(name)!;

// Real output of `dpkg-query -W -f='${binary:Package}\t${Package}\t${db:Status-Abbrev}\t${Version}\n'` on Debian 12.
const DPKG_SSH_BASH = 'bash\tbash\tii \t5.2.15-2+b8\nopenssh-server\topenssh-server\tii \t1:9.2p1-2+deb12u10\n';
const DPKG_LIBC = 'libc6:amd64\tlibc6\tii \t2.36-9+deb12u14\n';
const NOT_FOUND = { code: 1, stderr: 'dpkg-query: no packages found matching nginx\n' };

// Real `LC_ALL=C apt-cache policy -- bash libc6` output (Debian 12).
const POLICY = `bash:
  Installed: 5.2.15-2+b8
  Candidate: 5.2.15-2+b13
  Version table:
     5.2.15-2+b13 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
 *** 5.2.15-2+b8 100
        100 /var/lib/dpkg/status
libc6:
  Installed: 2.36-9+deb12u14
  Candidate: 2.36-9+deb12u14
  Version table:
 *** 2.36-9+deb12u14 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
nginx:
  Installed: (none)
  Candidate: 1.22.1-9+deb12u1
  Version table:
     1.22.1-9+deb12u1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
`;

describe('parsers', () => {
  it('reads dpkg-query lines, matching plain and arch-qualified names, holds and non-installed states', () => {
    const out = `${DPKG_LIBC}nginx\tnginx\thi \t1.22.1-9\nold\told\trc \t1.0\ngone\tgone\tun \t\n`;
    const parsed = parseDpkgQuery(out, ['libc6', 'libc6:amd64', 'nginx', 'old', 'gone']);
    expect(parsed.get('libc6')).toEqual({ version: '2.36-9+deb12u14', held: false });
    expect(parsed.get('libc6:amd64')).toEqual({ version: '2.36-9+deb12u14', held: false });
    expect(parsed.get('nginx')).toEqual({ version: '1.22.1-9', held: true });
    expect(parsed.has('old')).toBe(false);
    expect(parsed.has('gone')).toBe(false);
  });

  it('reads apt-cache policy blocks, (none) meaning absent', () => {
    const parsed = parseAptPolicy(POLICY, ['bash', 'libc6:amd64', 'nginx', 'nosuch']);
    expect(parsed.get('bash')).toEqual({ installed: '5.2.15-2+b8', candidate: '5.2.15-2+b13' });
    expect(parsed.get('libc6:amd64')).toEqual({ installed: '2.36-9+deb12u14', candidate: '2.36-9+deb12u14' });
    expect(parsed.get('nginx')).toEqual({ candidate: '1.22.1-9+deb12u1' });
    expect(parsed.has('nosuch')).toBe(false);
  });

  it('reads rpm -q lines, versionlock entries and dnf check-update lines', () => {
    const rpm = 'nginx\tx86_64\t1:1.20.1-14.el9_2.1\npackage htop is not installed\n';
    const locks = '# Added lock on Mon\nnginx-1:1.20.1-14.el9_2.1.*\n!kernel-0:5.14.0-1.el9.*\n';
    const parsed = parseRpmQuery(rpm, ['nginx', 'nginx.x86_64', 'htop'], locks);
    expect(parsed.get('nginx')).toEqual({ version: '1:1.20.1-14.el9_2.1', held: true });
    expect(parsed.get('nginx.x86_64')?.version).toBe('1:1.20.1-14.el9_2.1');
    expect(parsed.has('htop')).toBe(false);
    expect(isLocked(locks, 'kernel')).toBe(false);
    expect(isLocked('nginx-mod-http-1:1.0-1.el9.*\n', 'nginx')).toBe(false);
    const updates = parseCheckUpdate('\nnginx.x86_64                1:1.20.1-16.el9_4.1          appstream\n');
    expect(updates.get('nginx')).toBe('1:1.20.1-16.el9_4.1');
    expect(updates.get('nginx.x86_64')).toBe('1:1.20.1-16.el9_4.1');
  });

  it.each([
    ['1:9.2p1-2+deb12u10', '1:9.2p1-2+deb12u10', true],
    ['1:9.2p1-2+deb12u10', '9.2p1-2+deb12u10', true],
    ['1:9.2p1-2+deb12u10', '2:9.2p1-2+deb12u10', false],
    ['1.22.1-9', '1.22*', true],
    ['1.23.0-1', '1.22*', false],
    ['1.22.1-9', '1.22.1', false],
  ])('version %s satisfies pin %s: %s', (installed, wanted, expected) => {
    expect(versionMatches(installed, wanted)).toBe(expected);
  });
});

describe('pkg.installed on Debian', () => {
  it('checks every package of pkgs: in one dpkg-query call and is in sync when all are installed', async () => {
    const node = fakeNode([[/^LC_ALL=C dpkg-query/, { stdout: DPKG_SSH_BASH }]]);
    const outcome = await fn('pkg.installed').check(state('pkg.installed', 'base', { pkgs: ['bash', 'openssh-server'] }), context(node));
    expect(node.commands).toEqual([
      `LC_ALL=C dpkg-query -W -f='\${binary:Package}\\t\${Package}\\t\${db:Status-Abbrev}\\t\${Version}\\n' -- 'bash' 'openssh-server'`,
    ]);
    expect(outcome).toEqual({ inSync: true, changes: {}, comment: 'All 2 packages are already installed' });
  });

  it('predicts installs, pin changes and holds with Salt-shaped changes', async () => {
    const node = fakeNode([[/dpkg-query/, { code: 1, stdout: DPKG_SSH_BASH, stderr: 'dpkg-query: no packages found matching nginx\n' }]]);
    const outcome = await fn('pkg.installed').check(
      state('pkg.installed', 'web', { pkgs: ['nginx', { 'openssh-server': '1:9.2p1-2+deb12u11' }, 'bash'], hold: true }),
      context(node),
    );
    expect(outcome.inSync).toBe(false);
    expect(outcome.changes).toEqual({
      nginx: { old: '', new: 'latest', hold: { old: false, new: true } },
      'openssh-server': { old: '1:9.2p1-2+deb12u10', new: '1:9.2p1-2+deb12u11', hold: { old: false, new: true } },
      bash: { hold: { old: false, new: true } },
    });
    expect(outcome.comment).toBe('Would install nginx, openssh-server; hold nginx, openssh-server, bash');
  });

  it('accepts a pin without the epoch as matching', async () => {
    const node = fakeNode([[/dpkg-query/, { stdout: DPKG_SSH_BASH }]]);
    const outcome = await fn('pkg.installed').check(state('pkg.installed', 'openssh-server', { version: '9.2p1-2+deb12u10' }), context(node));
    expect(outcome.inSync).toBe(true);
  });

  it('applies with apt-get install (pins as name=version, downgrades allowed), apt-mark hold, then reads versions back', async () => {
    let installed = false;
    const node = fakeNode([
      [/dpkg-query/, () => (installed ? { stdout: `nginx\tnginx\thi \t1.22.1-9\n${DPKG_SSH_BASH}` } : { ...NOT_FOUND, stdout: DPKG_SSH_BASH })],
      [/apt-get .* install/, () => ((installed = true), { stdout: 'Setting up nginx (1.22.1-9) ...\n' })],
    ]);
    const fnc = fn('pkg.installed');
    const s = state('pkg.installed', 'web', { pkgs: [{ nginx: '1.22.1-9' }, 'bash'], hold: true });
    const ctx = context(node);
    const checked = await fnc.check(s, ctx);
    const outcome = await fnc.apply(s, ctx, checked);
    expect(node.commands.slice(1)).toEqual([
      "DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install -- 'nginx=1.22.1-9'",
      "apt-mark hold -- 'nginx' 'bash'",
      `LC_ALL=C dpkg-query -W -f='\${binary:Package}\\t\${Package}\\t\${db:Status-Abbrev}\\t\${Version}\\n' -- 'nginx'`,
    ]);
    expect(outcome.result).toBe(true);
    expect(outcome.changes).toEqual({ nginx: { old: '', new: '1.22.1-9', hold: { old: false, new: true } }, bash: { hold: { old: false, new: true } } });
  });

  it('passes --allow-downgrades for a pin below the installed version', async () => {
    const node = fakeNode([[/dpkg-query/, { stdout: DPKG_SSH_BASH }]]);
    const s = state('pkg.installed', 'bash', { version: '5.2.15-2' });
    const ctx = context(node);
    await fn('pkg.installed').apply(s, ctx, await fn('pkg.installed').check(s, ctx));
    expect(node.commands[1]).toContain("--allow-downgrades install -- 'bash=5.2.15-2'");
  });

  it('refreshes the package lists once and retries when apt cannot locate the package', async () => {
    let updated = false;
    const node = fakeNode([
      [/dpkg-query/, () => (updated ? { stdout: 'nginx\tnginx\tii \t1.22.1-9\n' } : NOT_FOUND)],
      [/apt-get .* update$/, () => ((updated = true), {})],
      [/apt-get .* install/, () => (updated ? {} : { code: 100, stderr: 'E: Unable to locate package nginx\n' })],
    ]);
    const s = state('pkg.installed', 'nginx');
    const ctx = context(node);
    const outcome = await fn('pkg.installed').apply(s, ctx, await fn('pkg.installed').check(s, ctx));
    expect(node.commands.filter((c) => /apt-get/.test(c)).map((c) => c.replace(/.* (install|update).*/, '$1'))).toEqual(['install', 'update', 'install']);
    expect(outcome).toMatchObject({ result: true, changes: { nginx: { old: '', new: '1.22.1-9' } } });
  });

  it('fails with apt-get\'s message when the install fails', async () => {
    const node = fakeNode([
      [/dpkg-query/, NOT_FOUND],
      [/apt-get/, { code: 100, stderr: 'E: Package nginx has broken dependencies\n' }],
    ]);
    const s = state('pkg.installed', 'nginx', { refresh: false });
    const ctx = context(node);
    const outcome = await fn('pkg.installed').apply(s, ctx, await fn('pkg.installed').check(s, ctx));
    expect(outcome.result).toBe(false);
    expect(outcome.comment).toContain('E: Package nginx has broken dependencies');
  });

  it('keeps a hostile name one quoted argument', async () => {
    const node = fakeNode([[/dpkg-query/, NOT_FOUND]]);
    const s = state('pkg.installed', 'x; rm -rf /');
    const ctx = context(node);
    // validate rejects it; the command, if it were ever built, still carries it as one word.
    expect(fn('pkg.installed').validate!({ pkgs: ['x; rm -rf /'] })[0]).toMatch(/^pkgs\.0: /);
    await expect(fn('pkg.installed').check(s, ctx)).rejects.toThrow(/not a valid package name/);
    expect(node.commands).toEqual([]);
  });
});

describe('pkg.removed and pkg.latest on Debian', () => {
  it('removes only installed packages', async () => {
    const node = fakeNode([[/dpkg-query/, { ...NOT_FOUND, stdout: 'bash\tbash\tii \t5.2.15-2+b8\n' }]]);
    const s = state('pkg.removed', 'junk', { pkgs: ['bash', 'nginx'] });
    const ctx = context(node);
    const checked = await fn('pkg.removed').check(s, ctx);
    expect(checked.changes).toEqual({ bash: { old: '5.2.15-2+b8', new: '' } });
    const outcome = await fn('pkg.removed').apply(s, ctx, checked);
    expect(node.commands[1]).toBe(
      "DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --allow-change-held-packages remove -- 'bash'",
    );
    expect(outcome.result).toBe(true);
  });

  it('is in sync when nothing is installed', async () => {
    const node = fakeNode([[/dpkg-query/, NOT_FOUND]]);
    expect((await fn('pkg.removed').check(state('pkg.removed', 'nginx'), context(node))).inSync).toBe(true);
  });

  it('upgrades to the apt-cache policy candidate', async () => {
    const node = fakeNode([
      [/apt-cache policy/, { stdout: POLICY }],
      [/dpkg-query/, { stdout: `${DPKG_SSH_BASH}${DPKG_LIBC}` }],
    ]);
    const s = state('pkg.latest', 'up', { pkgs: ['bash', 'libc6', 'nginx'] });
    const ctx = context(node);
    const checked = await fn('pkg.latest').check(s, ctx);
    expect(node.commands[0]).toBe("LC_ALL=C apt-cache policy -- 'bash' 'libc6' 'nginx'");
    expect(checked.changes).toEqual({ bash: { old: '5.2.15-2+b8', new: '5.2.15-2+b13' }, nginx: { old: '', new: '1.22.1-9+deb12u1' } });
    await fn('pkg.latest').apply(s, ctx, checked);
    expect(node.commands[2]).toMatch(/ install -- 'bash' 'nginx'$/);
  });

  it('fails the check when a package has no candidate and refresh is off', async () => {
    const node = fakeNode([[/apt-cache policy/, { stdout: '' }], [/dpkg-query/, NOT_FOUND]]);
    await expect(fn('pkg.latest').check(state('pkg.latest', 'nosuch'), context(node))).rejects.toThrow(/No installation candidate for nosuch/);
  });
});

describe('pkg on the RHEL family', () => {
  it('checks with rpm -q and the versionlock list in one probe, installs with dnf name-version', async () => {
    const node = fakeNode([
      [
        /rpm -q/,
        () => ({
          stdout: sections({ rpm: ['nginx\tx86_64\t1:1.20.1-14.el9_2.1\npackage htop is not installed', 1], locks: ['', 1] }),
        }),
      ],
    ]);
    const s = state('pkg.installed', 'tools', { pkgs: ['nginx', { htop: '3.2.1-1.el9' }] });
    const ctx = context(node, { osFamily: 'redhat' });
    const checked = await fn('pkg.installed').check(s, ctx);
    expect(node.commands[0]).toContain(`rpm -q --qf '%{NAME}\\t%{ARCH}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n' -- 'nginx' 'htop'`);
    expect(node.commands[0]).toContain("cat '/etc/dnf/plugins/versionlock.list'");
    expect(checked.changes).toEqual({ htop: { old: '', new: '3.2.1-1.el9' } });
    await fn('pkg.installed').apply(s, ctx, checked);
    expect(node.commands[1]).toBe("dnf -y -q install -- 'htop-3.2.1-1.el9'");
  });

  it('holds with dnf versionlock', async () => {
    const node = fakeNode([[/rpm -q/, { stdout: sections({ rpm: ['nginx\tx86_64\t1:1.20.1-14.el9_2.1', 0], locks: ['', 1] }) }]]);
    const s = state('pkg.installed', 'nginx', { hold: true });
    const ctx = context(node, { osFamily: 'redhat' });
    const outcome = await fn('pkg.installed').apply(s, ctx, await fn('pkg.installed').check(s, ctx));
    expect(node.commands[1]).toBe("dnf -y -q versionlock add -- 'nginx'");
    // Nothing was installed, so nothing is read back: rpm -q with no names exits 1 ("no arguments given for query").
    expect(node.commands).toHaveLength(2);
    expect(outcome).toMatchObject({ result: true, changes: { nginx: { hold: { old: false, new: true } } } });
  });

  it('pkg.latest with only a hold to add succeeds: the empty read-back never reaches rpm', async () => {
    const NGINX = 'nginx\tx86_64\t1:1.20.1-14.el9_2.1';
    // As the real rpm answers: `rpm -q --qf FMT --` with no names exits 1.
    const rpm = (command: string): [string, number] => (/rpm -q --qf '[^']*' --\s*\n/.test(command) ? ['rpm: no arguments given for query', 1] : [NGINX, 0]);
    const node = fakeNode([
      [/check-update/, (command) => ({ stdout: sections({ rpm: rpm(command), updates: ['', 0] }) })],
      [/rpm -q/, (command) => ({ stdout: sections({ rpm: rpm(command), locks: ['', 1] }) })],
    ]);
    const s = state('pkg.latest', 'nginx', { hold: true });
    const ctx = context(node, { osFamily: 'redhat' });
    const outcome = await fn('pkg.latest').apply(s, ctx, await fn('pkg.latest').check(s, ctx));
    expect(node.commands[2]).toBe("dnf -y -q versionlock add -- 'nginx'");
    expect(outcome).toMatchObject({ result: true, changes: { nginx: { hold: { old: false, new: true } } } });
  });

  it('refuses an unknown OS family', async () => {
    const node = fakeNode([]);
    await expect(fn('pkg.installed').check(state('pkg.installed', 'nginx'), context(node, { osFamily: 'unknown' }))).rejects.toThrow(/unsupported OS family/);
  });
});
