import { describe, expect, it } from 'vitest';
import { RackseedError } from '../../server/model/errors.js';
import { ANY_MODULE } from '../../server/state/parse/requisites.js';
import { parseSls, resolveInclude } from '../../server/state/parse/sls.js';
import type { SlsDocument } from '../../server/state/types.js';

const FILE = 'states/web/init.sls';

function parse(yaml: string, template?: string, sls = 'web', path = 'web/init.sls'): SlsDocument {
  return parseSls({ sls, file: FILE, path, rendered: yaml, ...(template !== undefined ? { template } : {}) });
}

function parseError(yaml: string, template?: string): RackseedError {
  try {
    parse(yaml, template);
  } catch (e) {
    if (e instanceof RackseedError) return e;
    throw e;
  }
  throw new Error('expected an SLS_INVALID error');
}

describe('state parse: both Salt forms and names', () => {
  it('module.fun form, module form with the function first, and the short form give the same declaration', () => {
    const forms = [
      'nginx:\n  pkg.installed:\n    - version: "1.22"\n',
      'nginx:\n  pkg:\n    - installed\n    - version: "1.22"\n',
      'nginx:\n  pkg:\n    - version: "1.22"\n    - installed\n',
    ];
    for (const yaml of forms) {
      const [state, ...rest] = parse(yaml).states;
      expect(rest).toEqual([]);
      expect(state).toMatchObject({ id: 'nginx', sls: 'web', module: 'pkg', fun: 'installed', name: 'nginx', args: { version: '1.22' }, source: { file: FILE, line: 1 } });
    }
    expect(parse('vim: pkg.installed\n').states[0]).toMatchObject({ id: 'vim', module: 'pkg', fun: 'installed', name: 'vim', args: {} });
    expect(parse('vim:\n  pkg.installed: []\n').states[0]).toMatchObject({ fun: 'installed' });
    expect(parse('vim:\n  pkg.installed:\n').states[0]).toMatchObject({ fun: 'installed' });
  });

  it('one ID with several modules gives one declaration per module, in written order', () => {
    const doc = parse('nginx:\n  pkg.installed: []\n  service.running:\n    - enable: true\n');
    expect(doc.states.map((s) => `${s.module}.${s.fun}`)).toEqual(['pkg.installed', 'service.running']);
    expect(doc.states[1]!.args).toEqual({ enable: true });
  });

  it('name overrides the ID; names expands to one declaration per name with per-name arguments', () => {
    expect(parse('web-pkg:\n  pkg.installed:\n    - name: nginx\n').states[0]!.name).toBe('nginx');
    const doc = parse('tools:\n  pkg.installed:\n    - fromrepo: main\n    - names:\n      - git\n      - curl:\n        - fromrepo: backports\n      - 7zip\n');
    expect(doc.states.map((s) => [s.id, s.name, s.args])).toEqual([
      ['tools', 'git', { fromrepo: 'main' }],
      ['tools', 'curl', { fromrepo: 'backports' }],
      ['tools', '7zip', { fromrepo: 'main' }],
    ]);
  });

  it('global keywords are split from module arguments', () => {
    const [s] = parse(
      [
        'setup:',
        '  cmd.run:',
        '    - name: /opt/setup.sh',
        '    - cwd: /opt',
        '    - order: 5',
        '    - unless: test -f /opt/done',
        '    - onlyif: [true, "test -d /opt"]',
        '    - creates: /opt/done',
        '    - failhard: true',
        '    - retry: {attempts: 5, interval: 2}',
        '',
      ].join('\n').replace('[true,', '["true",'),
    ).states;
    expect(s).toMatchObject({ name: '/opt/setup.sh', args: { cwd: '/opt' }, order: 5, unless: ['test -f /opt/done'], onlyif: ['true', 'test -d /opt'], creates: ['/opt/done'], failhard: true, retry: { attempts: 5, interval: 2, until: true } });
    expect(parse('a:\n  cmd.run:\n    - retry: true\n    - order: last\n').states[0]).toMatchObject({ retry: { attempts: 2, interval: 30, until: true }, order: 'last' });
    expect(parse('a:\n  cmd.run: []\n').states[0]).toMatchObject({ unless: [], onlyif: [], creates: [], failhard: false });
    expect(parse('a:\n  cmd.run: []\n').states[0]!.retry).toBeUndefined();
  });

  it('every requisite kind and its _in form, with module, sls and bare references', () => {
    const kinds = ['require', 'watch', 'prereq', 'onchanges', 'onfail'];
    for (const kind of kinds) {
      for (const suffix of ['', '_in']) {
        const [s] = parse(`a:\n  cmd.run:\n    - ${kind}${suffix}:\n      - pkg: nginx\n      - sls: base.ssh\n      - bare-id\n`).states;
        expect(s!.requisites).toEqual([
          { kind, reverse: suffix === '_in', ref: { module: 'pkg', target: 'nginx' } },
          { kind, reverse: suffix === '_in', ref: { module: 'sls', target: 'base.ssh' } },
          { kind, reverse: suffix === '_in', ref: { module: ANY_MODULE, target: 'bare-id' } },
        ]);
      }
    }
  });

  it('include (relative too), exclude and extend', () => {
    const doc = parse('include:\n  - base\n  - .tls\n  - ..common\nexclude:\n  - id: old\n  - sls: legacy\nextend:\n  nginx:\n    service:\n      - watch:\n        - file: conf\n      - reload: true\n', undefined, 'roles.web', 'roles/web.sls');
    expect(doc.includes).toEqual([
      { sls: 'base', source: { file: FILE, line: 2 } },
      { sls: 'roles.tls', source: { file: FILE, line: 3 } },
      { sls: 'common', source: { file: FILE, line: 4 } },
    ]);
    expect(doc.excludes).toEqual([
      { kind: 'id', target: 'old', source: { file: FILE, line: 6 } },
      { kind: 'sls', target: 'legacy', source: { file: FILE, line: 7 } },
    ]);
    expect(doc.extends).toEqual([{ id: 'nginx', module: 'service', args: { reload: true }, requisites: [{ kind: 'watch', reverse: false, ref: { module: 'file', target: 'conf' } }], source: { file: FILE, line: 9 } }]);
  });

  it.each([
    ['a.b', 'a/b.sls', '.c', 'a.c'],
    ['a.b', 'a/b/init.sls', '.c', 'a.b.c'],
    ['a.b.c', 'a/b/c.sls', '..d', 'a.d'],
    ['a', 'a/init.sls', '.x', 'a.x'],
    ['a', 'a.sls', '.x', 'x'],
    ['a', 'a.sls', '..x', undefined],
    ['a', 'a.sls', 'plain.name', 'plain.name'],
  ])('relative include from %s (%s): %s -> %s', (sls, path, target, expected) => {
    expect(resolveInclude(sls, path, target)).toBe(expected);
  });

  it('a YAML 1.2 octal or hex literal stays the text it was written as (0o640 is the mode 0640, not 416 read as 0416)', () => {
    const doc = parse('/etc/secret:\n  file.managed:\n    - contents: x\n    - mode: 0o640\n    - dir_mode: 0x1ed\n    - size: 640\n');
    expect(doc.states[0]?.args).toMatchObject({ mode: '0o640', dir_mode: '0x1ed', size: 640 });
  });

  it('an empty or comment-only SLS is an empty document', () => {
    expect(parse('# nothing here\n')).toEqual({ sls: 'web', file: FILE, includes: [], states: [], extends: [], excludes: [] });
  });
});

describe('state parse: errors name file, line, state ID and key', () => {
  const cases: Array<[string, string, RegExp, number, Record<string, unknown>]> = [
    ['not YAML', 'a:\n  - b\n c: d\n', /is not valid YAML/, 3, {}],
    ['duplicate ID', 'a: pkg.installed\na: pkg.removed\n', /not valid YAML: key "a" appears twice in one mapping/, 2, { key: 'a' }],
    ['duplicate quoted ID', "x: pkg.installed\n'slurm user': user.present\n'slurm user': user.absent\n", /key 'slurm user' appears twice/, 3, { key: "'slurm user'" }],
    ['top level not a mapping', '- a\n', /must be a mapping of state IDs/, 1, {}],
    ['argument not a mapping', 'nginx:\n  pkg.installed:\n    - [1, 2]\n', /state "nginx" pkg\.installed: arguments must be/, 3, { id: 'nginx', key: 'pkg.installed' }],
    ['two functions of one module', 'nginx:\n  pkg.installed: []\n  pkg.removed: []\n', /declares pkg twice/, 3, { id: 'nginx' }],
    ['second function in module form', 'nginx:\n  pkg:\n    - installed\n    - removed\n', /second function/, 4, { id: 'nginx' }],
    ['no function', 'nginx:\n  pkg:\n    - name: x\n', /names no function/, 2, { id: 'nginx', key: 'pkg' }],
    ['bad module key', 'nginx:\n  Pkg-Thing.installed: []\n', /is not a state module/, 2, { id: 'nginx' }],
    ['bad order', 'a:\n  cmd.run:\n    - order: soon\n', /state "a" cmd order: must be an integer/, 3, { id: 'a', key: 'order' }],
    ['bad unless', 'a:\n  cmd.run:\n    - unless:\n      - fun: file.exists\n', /unless: must be a command string.*fun: form/, 3, { id: 'a', key: 'unless' }],
    ['bad failhard', 'a:\n  cmd.run:\n    - failhard: yes\n', /failhard: must be true or false/, 3, { key: 'failhard' }],
    ['bad retry key', 'a:\n  cmd.run:\n    - retry: {splay: 3}\n', /retry\.splay: unknown key/, 3, { key: 'retry.splay' }],
    ['unsupported listen', 'a:\n  cmd.run:\n    - listen:\n      - file: x\n', /listen: is not supported by rackseed \(use watch\)/, 3, { key: 'listen' }],
    ['bad requisite ref', 'a:\n  cmd.run:\n    - require:\n      - pkg: [[1]]\n', /require: "pkg:" needs a state ID/, 3, { key: 'require' }],
    ['key given twice', 'a:\n  cmd.run:\n    - cwd: /a\n    - cwd: /b\n', /cwd: given twice \(first on line 3\)/, 4, { key: 'cwd' }],
    ['name and names', 'a:\n  pkg.installed:\n    - name: x\n    - names: [y]\n', /names: and name cannot both be given/, 4, { key: 'names' }],
    ['duplicate in names', 'a:\n  pkg.installed:\n    - names: [y, y]\n', /"y" is listed twice/, 3, { key: 'names' }],
    ['extend cannot change order', 'extend:\n  a:\n    cmd:\n      - order: 1\n', /extend "a" cmd order: cannot be changed by extend/, 4, { id: 'a' }],
    ['bad include', 'include:\n  - {x: 1}\n', /include: items must be SLS names/, 2, { key: 'include' }],
    ['include above the tree', 'include:\n  - ...x\n', /goes above the top of the state tree/, 2, {}],
    ['bad exclude', 'exclude:\n  - name: x\n', /exclude: items must be "- id: X" or "- sls: Y"/, 2, {}],
  ];
  it.each(cases)('%s', (_title, yaml, message, line, details) => {
    const e = parseError(yaml);
    expect(e.code).toBe('SLS_INVALID');
    expect(e.message).toMatch(message);
    expect(e.message.startsWith(`${FILE}:${line}: `)).toBe(true);
    expect(e.details).toMatchObject({ file: FILE, line, ...details });
  });

  it('lines point into the template, not the rendered text, when a loop changed the line count', () => {
    const template = '{% for p in pkgs %}\n{{ p }}:\n  pkg.installed: []\n{% endfor %}\nbroken:\n  cmd.run:\n    - order: soon\n';
    const rendered = 'a:\n  pkg.installed: []\nb:\n  pkg.installed: []\nc:\n  pkg.installed: []\nbroken:\n  cmd.run:\n    - order: soon\n';
    const e = parseError(rendered, template);
    expect(e.message).toMatch(/^states\/web\/init\.sls:7: state "broken"/);
    expect(parseError(rendered).message).toMatch(/^states\/web\/init\.sls:9: /);
  });

  it('a duplicate ID a loop made is named, on a line inside the template (not past its end)', () => {
    // A pillar-driven loop of users, then a hand-written one the loop also produced: 10 template lines, 18 rendered.
    const template = '{% for u in users %}\n{{ u }}:\n  user.present:\n    - shell: /bin/bash\n{% endfor %}\n\nslurm:\n  user.present:\n    - system: true\n';
    const users = ['alice', 'bob', 'carol', 'slurm'];
    const rendered = `${users.map((u) => `${u}:\n  user.present:\n    - shell: /bin/bash\n`).join('')}\nslurm:\n  user.present:\n    - system: true\n`;
    const e = parseError(rendered, template);
    expect(e.message).toMatch(/key "slurm" appears twice in one mapping/);
    const line = (e.details as { line: number }).line;
    expect(line).toBeGreaterThanOrEqual(1);
    expect(line).toBeLessThanOrEqual(template.split('\n').length);
    expect(line).toBe(7);
  });
});
