import { execFileSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { builtinModules, knownFunctions } from '../../server/state/modules/index.js';
import { parseSections, quoteAll, sectionScript, shellQuote } from '../../server/state/modules/shell.js';
import { context, fakeNode, state } from '../fixtures/state-modules/harness.js';

/** What /bin/sh really makes of a command line: each argument of printf, NUL-separated. */
function argumentsAsShellSeesThem(words: string): string[] {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${words}`]).toString();
  return out.split('\0').slice(0, -1);
}

const HOSTILE = ['x; rm -rf /', "it's", '$(reboot)', '`id`', 'a\nb', '"quoted"', '*', '', '-rf', '\\', "'; echo pwned; '"];

describe('shellQuote', () => {
  it('makes every value exactly one argument for a real /bin/sh', () => {
    for (const value of HOSTILE) expect(argumentsAsShellSeesThem(shellQuote(value))).toEqual([value]);
    expect(argumentsAsShellSeesThem(quoteAll(HOSTILE))).toEqual(HOSTILE);
  });

  it('quotes plain words too', () => {
    expect(shellQuote('nginx')).toBe("'nginx'");
    expect(shellQuote("x; rm -rf /")).toBe("'x; rm -rf /'");
  });
});

describe('sectionScript', () => {
  it('gives each probe its own output and exit status in one real shell run', () => {
    const script = sectionScript([
      ['two', 'echo one; echo two'],
      ['none', 'true'],
      ['failed', 'printf partial; (exit 3)'],
      ['missing', 'cat /nonexistent/rackseed 2>/dev/null'],
    ]);
    const parsed = parseSections(execFileSync('sh', ['-c', script]).toString());
    expect(Object.fromEntries(parsed)).toEqual({
      two: { out: 'one\ntwo\n', code: 0 },
      none: { out: '', code: 0 },
      failed: { out: 'partial', code: 3 },
      missing: { out: '', code: 1 },
    });
  });
});

describe('the module registry', () => {
  it('knows the built-in functions, and every one validates and checks', () => {
    expect(knownFunctions()).toEqual([
      'cmd.run',
      'file.absent',
      'file.blockreplace',
      'file.directory',
      'file.managed',
      'file.symlink',
      'group.present',
      'kmod.present',
      'mount.mounted',
      'pkg.installed',
      'pkg.latest',
      'pkg.removed',
      'service.dead',
      'service.disabled',
      'service.enabled',
      'service.running',
      'sysctl.present',
      'user.present',
    ]);
    const registry = builtinModules();
    expect([...registry.keys()].sort()).toEqual(knownFunctions());
    for (const fn of registry.values()) {
      expect(typeof fn.check).toBe('function');
      expect(typeof fn.apply).toBe('function');
      expect(typeof fn.validate).toBe('function');
    }
    expect(registry.get('service.running')!.watch).toBeDefined();
    expect(registry.get('pkg.installed')!.watch).toBeUndefined();
  });

  it.each([
    ['pkg.installed', { version: ['1'] }, /^version: /],
    ['pkg.installed', { pkgs: ['nginx'], version: '1' }, /^version: not allowed with pkgs/],
    ['pkg.installed', { hold: 'yes' }, /^hold: expected boolean, got string$/],
    ['pkg.installed', { pkgz: ['nginx'] }, /unknown key "pkgz" \(did you mean "pkgs"\?/],
    ['file.managed', { makedirs: 1 }, /^makedirs: expected boolean, got number$/],
    ['file.symlink', {}, /^target: missing \(expected string\)$/],
    ['sysctl.present', {}, /^value: /],
    ['sysctl.present', { value: 1, config: 'relative.conf' }, /^config: expected an absolute path$/],
    ['mount.mounted', { device: '/dev/sdb1' }, /^fstype: /],
    ['user.present', { uid: 'abc' }, /^uid: /],
    ['kmod.present', { persist: 'true' }, /^persist: expected boolean/],
    ['service.running', { enabled: true }, /unknown key "enabled" \(did you mean "enable"\?/],
    ['cmd.run', { cwd: 'tmp' }, /^cwd: expected an absolute path$/],
  ])('%s with %j: %s', (name, args, message) => {
    const problems = builtinModules().get(name)!.validate!(args);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatch(message);
  });

  it('accepts valid args without complaint', () => {
    const registry = builtinModules();
    expect(registry.get('pkg.installed')!.validate!({ pkgs: ['nginx', { 'openssh-server': '1:9.2p1-2' }], hold: true, refresh: true })).toEqual([]);
    expect(registry.get('file.managed')!.validate!({ name: '/etc/x', source: 'rackseed://x.njk', template: 'nunjucks', mode: '0640', user: 'root', group: 'root', makedirs: true, show_changes: false })).toEqual([]);
    expect(registry.get('mount.mounted')!.validate!({ device: 'UUID=1', fstype: 'ext4', opts: 'noatime', persist: true, mkmnt: true })).toEqual([]);
  });

  it('rejects bad args at run time too, naming the state and key, before sending anything', async () => {
    const node = fakeNode([]);
    await expect(builtinModules().get('file.managed')!.check(state('file.managed', '/etc/x', { mode: 'abc' }), context(node))).rejects.toThrow(
      'file.managed /etc/x: mode: expected an octal mode such as 0644',
    );
    expect(node.calls).toEqual([]);
  });
});
