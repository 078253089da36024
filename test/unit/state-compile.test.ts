import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RackseedError } from '../../server/model/errors.js';
import { compileForNode, type CompileInput } from '../../server/state/compile/index.js';
import { createMemorySource, readSourceRef } from '../../server/state/source.js';
import { FsSlsSource, createFsSource } from '../../server/state/source-fs.js';
import type { CompiledPlan } from '../../server/state/types.js';
import { makeContext } from '../fixtures/sls/context.js';

function compile(files: Record<string, string>, sls: string[] = ['main'], extra: Partial<CompileInput> = {}): CompiledPlan {
  return compileForNode({ source: createMemorySource({ files, label: 'states' }), context: makeContext(), sls, ...extra });
}

function ids(plan: CompiledPlan): string[] {
  return plan.states.map((s) => (s.name === s.id ? s.id : `${s.id}/${s.name}`));
}

function compileError(files: Record<string, string>, sls: string[] = ['main'], extra: Partial<CompileInput> = {}): RackseedError {
  try {
    compile(files, sls, extra);
  } catch (e) {
    if (e instanceof RackseedError) return e;
    throw e;
  }
  throw new Error('expected a compile error');
}

/** `a: [require b]` shorthand: each state is a cmd.run with the given extra YAML lines. */
function sls(states: Record<string, string[]>): string {
  return Object.entries(states)
    .map(([id, lines]) => `${id}:\n  cmd.run:${lines.length === 0 ? ' []' : ''}\n${lines.map((l) => `    - ${l}\n`).join('')}`)
    .join('');
}

describe('state compile: ordering', () => {
  const cases: Array<[string, Record<string, string[]>, string[]]> = [
    ['definition order is the default', { c: [], a: [], b: [] }, ['c', 'a', 'b']],
    ['order: first < numbers < unordered < negative < last', { a: [], b: ['order: last'], c: ['order: 2'], d: ['order: 1'], e: ['order: first'], f: ['order: -1'], g: ['order: -2'] }, ['e', 'd', 'c', 'a', 'g', 'f', 'b']],
    ['a require pulls its target right before the requiring state', { a: ['require: [{cmd: c}]'], b: [], c: [] }, ['c', 'a', 'b']],
    ['watch orders like require', { a: ['watch: [{cmd: c}]'], b: [], c: [] }, ['c', 'a', 'b']],
    ['onchanges orders like require', { a: ['onchanges: [{cmd: c}]'], b: [], c: [] }, ['c', 'a', 'b']],
    ['onfail orders like require', { a: ['onfail: [{cmd: c}]'], b: [], c: [] }, ['c', 'a', 'b']],
    ['prereq runs the state BEFORE its target', { x: [], y: [], a: ['prereq: [{cmd: x}]'] }, ['a', 'x', 'y']],
    ['requisites win over order', { a: ['order: first', 'require: [{cmd: z}]'], z: ['order: last'] }, ['z', 'a']],
    ['dependencies are placed in their own order', { a: ['require: [c, b]'], b: ['order: 9'], c: ['order: 1'] }, ['c', 'b', 'a']],
    ['chains resolve transitively', { a: ['require: [b]'], b: ['require: [c]'], c: [] }, ['c', 'b', 'a']],
  ];
  it.each(cases)('%s', (_title, states, expected) => {
    const plan = compile({ 'main.sls': sls(states) });
    expect(ids(plan)).toEqual(expected);
    expect(plan.states.map((s) => s.index)).toEqual(expected.map((_, i) => i));
  });

  it('the same input always gives the same plan', () => {
    const files = { 'main.sls': sls({ a: ['require: [c]'], b: ['order: 3'], c: [], d: ['watch_in: [a]'] }) };
    expect(compile(files)).toEqual(compile(files));
  });

  it('state keys are module_|-id_|-name_|-fun and requisites point at keys', () => {
    const plan = compile({ 'main.sls': 'nginx:\n  pkg.installed: []\n  service.running:\n    - require:\n      - pkg: nginx\n' });
    expect(plan.states.map((s) => s.key)).toEqual(['pkg_|-nginx_|-nginx_|-installed', 'service_|-nginx_|-nginx_|-running']);
    expect(plan.states[1]!.requisites).toEqual([{ kind: 'require', on: ['pkg_|-nginx_|-nginx_|-installed'], ref: { module: 'pkg', target: 'nginx' } }]);
  });
});

describe('state compile: requisites and their _in forms', () => {
  const KINDS = ['require', 'watch', 'onchanges', 'onfail', 'prereq'] as const;
  it.each(KINDS)('%s_in on B becomes %s on A', (kind) => {
    const plan = compile({ 'main.sls': sls({ a: [], b: [`${kind}_in: [{cmd: a}]`] }) });
    const a = plan.states.find((s) => s.id === 'a')!;
    const b = plan.states.find((s) => s.id === 'b')!;
    expect(a.requisites).toEqual([{ kind, on: [b.key], ref: { module: 'cmd', target: 'b' } }]);
    expect(b.requisites).toEqual([]);
    // prereq: the state holding the prereq (a) runs before its target (b); every other kind the other way round.
    expect(ids(plan)).toEqual(kind === 'prereq' ? ['a', 'b'] : ['b', 'a']);
  });

  it.each(KINDS)('%s matches by module and ID, by name, by sls and bare', (kind) => {
    const files = {
      'main.sls': `include:\n  - lib\nweb:\n  pkg.installed:\n    - name: nginx-full\nuser:\n  cmd.run:\n    - ${kind}:\n      - pkg: nginx-full\n      - sls: lib\n      - web\n`,
      'lib.sls': sls({ l1: [], l2: [] }),
    };
    const user = compile(files).states.find((s) => s.id === 'user')!;
    expect(user.requisites.map((r) => [r.kind, r.ref.target, r.on])).toEqual([
      [kind, 'nginx-full', ['pkg_|-web_|-nginx-full_|-installed']],
      [kind, 'lib', ['cmd_|-l1_|-l1_|-run', 'cmd_|-l2_|-l2_|-run']],
      [kind, 'web', ['pkg_|-web_|-nginx-full_|-installed']],
    ]);
  });

  it('a ref to a names-expanded ID means every name', () => {
    const plan = compile({ 'main.sls': 'tools:\n  pkg.installed:\n    - names: [git, curl]\nuse:\n  cmd.run:\n    - require: [{pkg: tools}]\n' });
    expect(plan.states.find((s) => s.id === 'use')!.requisites[0]!.on).toEqual(['pkg_|-tools_|-git_|-installed', 'pkg_|-tools_|-curl_|-installed']);
  });

  it('an sls ref to its own SLS means the other states of it', () => {
    const plan = compile({ 'main.sls': sls({ a: ['require: [{sls: main}]'], b: [] }) });
    expect(ids(plan)).toEqual(['b', 'a']);
  });

  const missing: Array<[string, string, RegExp]> = [
    ['module + ID', sls({ a: ['require: [{pkg: nginx}]'] }), /^states\/main\.sls:1: cmd: a in main \(states\/main\.sls:1\) has require "pkg: nginx", but no such state is in this node's plan/],
    ['wrong module', 'nginx:\n  pkg.installed: []\n' + sls({ a: ['watch: [{service: nginx}]'] }), /has watch "service: nginx", but no such state/],
    ['bare', sls({ a: ['onfail: [ghost]'] }), /has onfail "ghost"/],
    ['sls', sls({ a: ['require: [{sls: nowhere}]'] }), /has require "sls: nowhere"/],
    ['_in form', sls({ a: ['require_in: [{cmd: ghost}]'] }), /cmd: a in main .* has require_in "cmd: ghost", but no such state/],
  ];
  it.each(missing)('a requisite on a missing state is STATE_REQUISITE_MISSING naming both (%s)', (_title, text, message) => {
    const e = compileError({ 'main.sls': text });
    expect(e.code).toBe('STATE_REQUISITE_MISSING');
    expect(e.message).toMatch(message);
  });

  const cycles: Array<[string, Record<string, string[]>, string[]]> = [
    ['two states', { a: ['require: [b]'], b: ['require: [a]'] }, ['a', 'b']],
    ['three states over watch and onchanges', { a: ['watch: [b]'], b: ['onchanges: [c]'], c: ['require: [a]'], d: [] }, ['a', 'b', 'c']],
    ['require_in closing a loop', { a: ['require: [b]'], b: ['require_in: [b2]'], b2: ['require_in: [a]', 'require: [a]'] }, ['a', 'b2']],
    ['prereq against require', { a: ['prereq: [b]', 'require: [b]'], b: [] }, ['a', 'b']],
  ];
  it.each(cycles)('a cycle is STATE_REQUISITE_CYCLE naming its states (%s)', (_title, states, inCycle) => {
    const e = compileError({ 'main.sls': sls(states) });
    expect(e.code).toBe('STATE_REQUISITE_CYCLE');
    for (const id of inCycle) expect(e.message).toContain(`cmd: ${id}`);
    expect(e.message).not.toContain('cmd: d');
    expect((e.details['states'] as string[]).sort()).toEqual(inCycle.map((id) => `cmd_|-${id}_|-${id}_|-run`).sort());
  });
});

describe('state compile: include, extend, exclude', () => {
  it('includes come before the including SLS, each SLS once, relative includes and include cycles work', () => {
    const plan = compile(
      {
        'main.sls': 'include:\n  - web\n  - base\n' + sls({ m: [] }),
        'web/init.sls': 'include:\n  - .tls\n  - base\n' + sls({ w: [] }),
        'web/tls.sls': 'include:\n  - web\n' + sls({ t: [] }),
        'base.sls': sls({ b: [] }),
      },
      ['main'],
    );
    expect(ids(plan)).toEqual(['t', 'b', 'w', 'm']);
    expect(plan.states.map((s) => s.sls)).toEqual(['web.tls', 'base', 'web', 'main']);
  });

  it('SLS order follows the requested list', () => {
    expect(ids(compile({ 'x.sls': sls({ x: [] }), 'y.sls': sls({ y: [] }) }, ['y', 'x']))).toEqual(['y', 'x']);
  });

  it('a missing include is SLS_NOT_FOUND naming the including file and line', () => {
    const e = compileError({ 'main.sls': '# header\ninclude:\n  - base\n  - ghost\n', 'base.sls': '' });
    expect(e.code).toBe('SLS_NOT_FOUND');
    expect(e.message).toBe('states/main.sls:4: SLS "ghost" is not in the state tree');
  });

  it('a bad SLS name in an include is SLS_INVALID naming the including file and line', () => {
    const e = compileError({ 'main.sls': '# header\ninclude:\n  - base\n  - slurm/common\n', 'base.sls': '' });
    expect(e.code).toBe('SLS_INVALID');
    expect(e.message).toBe('states/main.sls:4: "slurm/common" is not a valid SLS name (dotted names of letters, digits, "_" and "-")');
  });

  it('extend replaces arguments and the name, appends requisites, applies after includes', () => {
    const plan = compile({
      'main.sls': 'include:\n  - web\nextend:\n  nginx:\n    service:\n      - enable: false\n      - watch:\n        - file: site\n    pkg:\n      - name: nginx-light\nsite:\n  file.managed:\n    - name: /etc/nginx/sites-enabled/x\n',
      'web.sls': 'nginx:\n  pkg.installed:\n    - name: nginx-full\n  service.running:\n    - enable: true\n    - reload: true\n    - require: [{pkg: nginx}]\n',
    });
    const service = plan.states.find((s) => s.module === 'service')!;
    expect(service.args).toEqual({ enable: false, reload: true });
    expect(service.requisites.map((r) => `${r.kind} ${r.ref.module}: ${r.ref.target}`)).toEqual(['require pkg: nginx', 'watch file: site']);
    expect(plan.states.find((s) => s.module === 'pkg')!.name).toBe('nginx-light');
    expect(ids(plan)).toEqual(['nginx/nginx-light', 'site//etc/nginx/sites-enabled/x', 'nginx']);
  });

  it('extending a state that is not there, or a module it lacks, is STATE_COMPILE naming the extend', () => {
    const none = compileError({ 'main.sls': 'extend:\n  ghost:\n    pkg:\n      - name: x\n' });
    expect(none.code).toBe('STATE_COMPILE');
    expect(none.message).toBe('states/main.sls:2: extend: cannot extend "ghost": no SLS of this node defines it');
    const wrongModule = compileError({ 'main.sls': 'extend:\n  a:\n    pkg:\n      - name: x\n' + sls({ a: [] }) });
    expect(wrongModule.message).toMatch(/^states\/main\.sls:2: extend: state "a" has no pkg function \(it has cmd\)/);
  });

  it('nothing overrides an exclude (Salt): an extend of an excluded state is dropped with it, and an excluded SLS\'s extends are not applied', () => {
    expect(ids(compile({ 'main.sls': 'exclude:\n  - id: a\nextend:\n  a:\n    cmd:\n      - cwd: /\n' + sls({ a: [], b: [] }) }))).toEqual(['b']);
    const plan = compile({
      'main.sls': 'include:\n  - a\n  - b\nexclude:\n  - sls: b\n',
      'a.sls': '/etc/motd:\n  file.managed:\n    - contents: good\n',
      'b.sls': 'extend:\n  /etc/motd:\n    file.managed:\n      - contents: evil\n',
    });
    // Before: the excluded b still rewrote a's file.
    expect(plan.states.find((s) => s.id === '/etc/motd')!.args['contents']).toBe('good');
  });

  it('exclude by id and by sls removes those states; a requisite on them is then missing', () => {
    const files = {
      'main.sls': 'include:\n  - extra\nexclude:\n  - id: b\n  - sls: extra\n' + sls({ a: [], b: [], c: [] }),
      'extra.sls': sls({ e1: [], e2: [] }),
    };
    expect(ids(compile(files))).toEqual(['a', 'c']);
    const e = compileError({ ...files, 'main.sls': files['main.sls'] + sls({ d: ['require: [b]'] }) });
    expect(e.code).toBe('STATE_REQUISITE_MISSING');
  });
});

describe('state compile: verify', () => {
  it('a duplicate ID across SLS files names both files', () => {
    const e = compileError({ 'main.sls': 'include:\n  - other\n' + sls({ dup: [] }), 'other.sls': sls({ dup: [] }) });
    expect(e.code).toBe('STATE_COMPILE');
    expect(e.message).toMatch(/state ID "dup" is declared in other \(states\/other\.sls:1\) and in main \(states\/main\.sls:3\)/);
    expect(e.details['files']).toEqual(['states/other.sls', 'states/main.sls']);
  });

  it('an unknown module function is STATE_MODULE_UNKNOWN with a suggestion when a known list is given', () => {
    const files = { 'main.sls': '\nnginx:\n  pkg.instaled: []\n' };
    expect(ids(compile(files))).toEqual(['nginx']);
    const e = compileError(files, ['main'], { knownFunctions: ['pkg.installed', 'service.running'] });
    expect(e.code).toBe('STATE_MODULE_UNKNOWN');
    expect(e.message).toBe('states/main.sls:2: state "nginx": unknown state function pkg.instaled (did you mean pkg.installed?)');
  });

  it('argument validation problems are SLS_INVALID naming the state', () => {
    const e = compileError({ 'main.sls': 'f:\n  file.managed:\n    - mode: 999\n' }, ['main'], {
      validateArgs: (decl) => (decl.args['mode'] === 999 ? ['mode: must be an octal string such as "0644"'] : []),
    });
    expect(e.code).toBe('SLS_INVALID');
    expect(e.message).toBe('states/main.sls:1: state "f" file.managed: mode: must be an octal string such as "0644"');
  });
});

describe('state compile: top.sls and the context', () => {
  const files = {
    'top.sls': "base:\n  '*':\n    - base\n  'gpu*':\n    - nvidia\n  'cpu*':\n    - nothing-here\n  gpu:\n    - match: group\n    - slurm\n{% if facts.osFamily == 'debian' %}\n  'osFamily:debian':\n    - match: fact\n    - debian\n{% endif %}\n",
    'base.sls': sls({ base: [] }),
    'nvidia.sls': 'driver:\n  pkg.installed:\n    - name: nvidia-driver-{{ pillar.driver }}\n',
    'slurm.sls': sls({ slurmd: [] }),
    'debian.sls': sls({ apt: [] }),
  };

  it('without an SLS list the node gets what top.sls targets, rendered with its context', () => {
    const plan = compileForNode({ source: createMemorySource({ files }), context: makeContext({ pillar: { driver: '550' } }) });
    expect(ids(plan)).toEqual(['base', 'driver/nvidia-driver-550', 'slurmd', 'apt']);
  });

  it('a missing SLS named in top.sls names top.sls and its line', () => {
    const e = (() => {
      try {
        compileForNode({ source: createMemorySource({ files }), context: makeContext({ name: 'cpu01' }) });
      } catch (err) {
        return err as RackseedError;
      }
      throw new Error('expected an error');
    })();
    expect(e.code).toBe('SLS_NOT_FOUND');
    expect(e.message).toBe('top.sls:7: SLS "nothing-here" is not in the state tree');
  });

  it('a bad SLS name in top.sls is SLS_INVALID naming top.sls and its line', () => {
    const top = "base:\n  '*':\n    - base\n  'cpu*':\n    - ../secrets\n";
    const e = (() => {
      try {
        compileForNode({ source: createMemorySource({ files: { ...files, 'top.sls': top } }), context: makeContext({ name: 'cpu01' }) });
      } catch (err) {
        return err as RackseedError;
      }
      throw new Error('expected an error');
    })();
    expect(e.code).toBe('SLS_INVALID');
    expect(e.message).toBe('top.sls:5: "../secrets" is not a valid SLS name (dotted names of letters, digits, "_" and "-")');
    expect(e.details).toMatchObject({ file: 'top.sls', line: 5 });
  });

  it('a render error names the SLS file and line', () => {
    const e = compileError({ 'main.sls': 'a:\n  cmd.run:\n    - name: {{ pillar.missing }}\n' });
    expect(e.code).toBe('SLS_RENDER');
    expect(e.message).toBe('states/main.sls:3: `pillar.missing` is undefined');
  });
});

describe('state compile: the file-backed source', () => {
  const fixtures = fileURLToPath(new URL('../fixtures/sls/', import.meta.url));

  it('reads a.b as a/b.sls or a/b/init.sls, the operator directory winning over the built-in tree', () => {
    const builtin = join(fixtures, 'builtin');
    const operator = join(fixtures, 'operator');
    const context = makeContext();
    const withOperator = compileForNode({ source: createFsSource([operator, builtin]), context });
    expect(withOperator.states.map((s) => [s.id, s.args['contents'] ?? null, s.source.file])).toEqual([
      ['motd', 'operator gpu01', join(operator, 'base', 'motd.sls')],
      ['chrony', null, join(builtin, 'base', 'init.sls')],
    ]);
    const builtinOnly = compileForNode({ source: createFsSource([join(fixtures, 'no-such-dir'), builtin]), context });
    expect(builtinOnly.states[0]!.args['contents']).toBe('built-in gpu01');
    expect(createFsSource([operator, builtin]).list()).toEqual(['base', 'base.motd']);
  });

  it('refuses paths that leave the tree, and symlinks that point out of it', () => {
    const source = createFsSource([join(fixtures, 'builtin')]);
    expect(() => source.readTemplate('../operator/base/motd.sls')).toThrow(/not a path inside the state tree/);
    expect(() => source.readTemplate('/etc/passwd')).toThrow(/not a path inside the state tree/);
    expect(() => source.read('..base')).toThrow(/not a valid SLS name/);
    const dir = mkdtempSync(join(tmpdir(), 'rackseed-sls-'));
    try {
      writeFileSync(join(dir, 'secret.txt'), 'secret');
      mkdirSync(join(dir, 'tree'));
      symlinkSync(join(dir, 'secret.txt'), join(dir, 'tree', 'leak.sls'));
      expect(() => createFsSource([join(dir, 'tree')]).read('leak')).toThrow(/outside the state tree/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('module source: references read files of the tree (rackseed:// and salt://), missing ones name the reference', () => {
    const source = new FsSlsSource([join(fixtures, 'operator'), join(fixtures, 'builtin')]);
    expect(source.readFile('rackseed://base/motd.sls')).toEqual({ text: expect.stringContaining('operator'), file: join(fixtures, 'operator', 'base', 'motd.sls') });
    expect(readSourceRef(createMemorySource({ files: { 'x/y.conf': 'z' } }), 'salt://x/y.conf')).toEqual({ text: 'z', file: 'x/y.conf' });
    expect(() => source.readFile('rackseed://nope.conf')).toThrow(/rackseed:\/\/nope\.conf: no such file in the state tree/);
    expect(() => source.readFile('/etc/passwd')).toThrow(/not a state tree reference/);
    expect(() => source.readFile('rackseed://../secret')).toThrow(/not a path inside the state tree/);
  });
});
