import { describe, expect, it } from 'vitest';
import { RackseedError } from '../../server/model/errors.js';
import { formatPrintf, shellQuote, toYamlFlow } from '../../server/state/render/filters.js';
import { createSlsRenderer, renderTemplateText } from '../../server/state/render/render.js';
import { createMemorySource } from '../../server/state/source.js';
import { makeContext } from '../fixtures/sls/context.js';

const FILE = 'states/web/init.sls';

function render(text: string, files: Record<string, string> = {}, pillar: Record<string, unknown> = {}): string {
  const source = createMemorySource({ files: { ...files, 'web/init.sls': text }, label: 'states' });
  const renderer = createSlsRenderer(source, makeContext({ pillar }));
  return renderer.renderSls(source.read('web')!, 'web');
}

function renderError(text: string, files: Record<string, string> = {}, pillar: Record<string, unknown> = {}): RackseedError {
  try {
    render(text, files, pillar);
  } catch (e) {
    if (e instanceof RackseedError) return e;
    throw e;
  }
  throw new Error(`expected a render error for ${JSON.stringify(text)}`);
}

describe('state render: filters nunjucks lacks', () => {
  const pillar = {
    users: [
      { name: 'ana', shell: '/bin/bash', admin: true },
      { name: 'bo', shell: '/bin/zsh', admin: false },
      { name: 'cy', shell: '/bin/bash', admin: true },
    ],
    conf: { b: 2, a: 'x<y>&' },
    words: ['b', 'a', 'b', 'c', 'a'],
  };
  const cases: Array<[string, string, string]> = [
    ['tojson is not HTML-escaped', '{{ pillar.conf|tojson }}', '{"b":2,"a":"x<y>&"}'],
    ['json is tojson', '{{ [1, "a"]|json }}', '[1,"a"]'],
    ['yaml is one-line flow', '{{ pillar.conf|yaml }}', '{ b: 2, a: x<y>& }'],
    ['to_yaml quotes multi-line strings', '{{ "a\\nb"|to_yaml }}', '"a\\nb"'],
    ['unique keeps first occurrences in order', '{{ pillar.words|unique|join(",") }}', 'b,a,c'],
    ['map attribute=', "{{ pillar.users|map(attribute='name')|join(',') }}", 'ana,bo,cy'],
    ['map filter name', "{{ ['a','b']|map('upper')|join(',') }}", 'A,B'],
    ['selectattr truthiness', "{{ pillar.users|selectattr('admin')|map(attribute='name')|join(',') }}", 'ana,cy'],
    ['selectattr with a test', "{{ pillar.users|selectattr('shell', 'equalto', '/bin/zsh')|map(attribute='name')|join(',') }}", 'bo'],
    ['rejectattr with a test', "{{ pillar.users|rejectattr('shell', 'equalto', '/bin/zsh')|map(attribute='name')|join(',') }}", 'ana,cy'],
    ['select with a test', '{{ [1,2,3,4]|select("odd")|join(",") }}', '1,3'],
    ['reject with a test', '{{ [1,2,3,4]|reject("odd")|join(",") }}', '2,4'],
    ['regex_replace uses Python backrefs and replaces all', "{{ 'eth0 eth1'|regex_replace('eth(\\\\d)', 'en\\\\1') }}", 'en0 en1'],
    ['regex_replace ignorecase keyword', "{{ 'ABC'|regex_replace('b', 'x', ignorecase=True) }}", 'AxC'],
    ['regex_search returns groups', "{{ 'driver 550.54'|regex_search('(\\\\d+)\\\\.(\\\\d+)')|join('/') }}", '550/54'],
    ['regex_search none when no match', "{{ 'abc'|regex_search('z') is none }}", 'true'],
    ['regex_match is anchored', "{{ 'xabc'|regex_match('abc') is none }} {{ 'abcx'|regex_match('abc')|first }}", 'true abc'],
    ['regex named groups (Python syntax)', "{{ 'v=12'|regex_search('v=(?P<n>\\\\d+)')|first }}", '12'],
    ['format printf', "{{ '%s-%03d %.1f %x %%'|format('n', 7, 2.75, 255) }}", 'n-007 2.8 ff %'],
    ['items for k, v', '{% for k, v in pillar.conf|items %}{{ k }}={{ v }};{% endfor %}', 'b=2;a=x<y>&;'],
    ['keys', '{{ pillar.conf|keys|join(",") }}', 'b,a'],
    ['values', '{{ pillar.conf|values|join(",") }}', '2,x<y>&'],
    ['quote', "{{ \"it's here\"|quote }} {{ 'plain-word'|quote }} {{ ''|quote }}", `'it'"'"'s here' plain-word ''`],
    ['b64encode', "{{ 'rackseed'|b64encode }}", 'cmFja3NlZWQ='],
    ['b64decode', "{{ 'cmFja3NlZWQ='|b64decode }}", 'rackseed'],
    ['sha256', "{{ 'abc'|sha256 }}", 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    ['is_list', '{{ [1]|is_list }} {{ "x"|is_list }}', 'true false'],
    ['bool (Salt to_bool)', "{{ 'yes'|bool }} {{ 'off'|bool }} {{ 1|to_bool }} {{ 0|bool }}", 'true false true false'],
    ['split has Python semantics', "{{ '  a  b c '|split|join('|') }} {{ 'a,b,c'|split(',', 1)|join('|') }}", 'a|b|c a|b,c'],
    ['startswith / endswith', "{{ 'gpu01'|startswith('gpu') }} {{ 'gpu01'|endswith('2') }}", 'true false'],
    ['min / max', '{{ [3, 1, 2]|min }} {{ [3, 1, 2]|max }}', '1 3'],
    ['union / intersect / difference / flatten', '{{ [1,2]|union([2,3])|join(",") }} {{ [1,2,3]|intersect([3,2])|join(",") }} {{ [1,2,3]|difference([2])|join(",") }} {{ [[1,[2]],3]|flatten|join(",") }}', '1,2,3 2,3 1,3 1,2,3'],
    ['True/False/None globals', '{{ True }} {{ False }} {{ None is none }}', 'true false true'],
    ['tests: mapping, sequence, in', '{{ pillar.conf is mapping }} {{ pillar.words is sequence }} {{ "a" is in(pillar.words) }}', 'true true true'],
    ['pillar.get with colon path and default', "{{ pillar.get('conf:b') }} {{ pillar.get('conf:zz', 'dflt') }} {{ pillar.get('users:1:name') }}", '2 dflt bo'],
    ['facts are visible', '{{ facts.osFamily }} {{ facts.gpus|length }} {{ node.name }} {{ group.data.partition }}', 'debian 2 gpu01 gpu'],
  ];
  it.each(cases)('%s', (_title, template, expected) => {
    expect(render(template, {}, pillar)).toBe(expected);
  });

  it('helpers: format errors on a missing argument, quote and yaml are embeddable', () => {
    expect(() => formatPrintf('%s %s', ['a'])).toThrow(/needs more arguments/);
    expect(shellQuote('a b')).toBe("'a b'");
    expect(toYamlFlow({ k: ['x: y', 'true'] })).toBe('{ k: [ "x: y", "true" ] }');
  });

  it('imports and includes other templates of the tree, relative names too', () => {
    const files = {
      'lib/macros.njk': '{% macro pkg(n) %}{{ n }}-pkg{% endmacro %}',
      'web/parts/header.njk': '# header for {{ node.name }}',
    };
    const out = render('{% import "lib/macros.njk" as m %}{% include "./parts/header.njk" %}\n{{ m.pkg("nginx") }}', files);
    expect(out).toBe('# header for gpu01\nnginx-pkg');
  });
});

describe('state render: silent nunjucks mismatches become errors naming file and line', () => {
  const cases: Array<[string, string, RegExp, number]> = [
    ['loop filter', 'a: 1\n{% for u in pillar.users if u.admin %}\n{% endfor %}', /loop filter.*\{% if cond %\}/, 2],
    ['do tag', '\n\n{% do xs.append(1) %}', /\{% do %\}.*\{% set %\}/, 3],
    ['namespace()', '{% set ns = namespace(n=0) %}', /namespace\(\).*set count/, 1],
    ['Python % formatting', "x\n{{ 'node-%s' % node.name }}", /`%` string formatting.*\|format/, 2],
    ['dict.items()', '{% for k, v in pillar.conf.items() %}{% endfor %}', /dict methods.*\|items/, 1],
    ['str.replace()', "{{ node.name.replace('a', 'b') }}", /replaces only the first.*\|replace/, 1],
    ['str.split()', '{{ node.name.split() }}', /\|split/, 1],
    ['str.upper()', '\n{{ node.name.upper() }}', /string methods.*\|upper/, 2],
    ['grains', "{% if grains['os'] == 'Debian' %}{% endif %}", /grains.*facts/, 1],
    ['salt execution modules', "{{ salt['cmd.run']('id') }}", /execution modules/, 1],
    ['printing a list', 'a\nb: {{ pillar.conf.list }}', /`pillar\.conf\.list` is a list.*\|tojson/, 2],
    ['printing a mapping', 'b: {{ pillar.conf }}', /\[object Object\].*\|yaml/, 1],
    ['printing an undefined value', 'a\nb\nc: {{ pillar.nope }}', /`pillar\.nope` is undefined/, 3],
    ['printing none', 'c: {{ None }}', /is none/, 1],
    ['printing NaN', "c: {{ 'a' * 2 }}", /NaN/, 1],
    ['pillar.get without default', "a\nc: {{ pillar.get('x:y') }}", /pillar\.get\('x:y'\): no such key/, 2],
    ['filter error has a line', "a\n\nc: {{ 'x'|regex_replace('(', '') }}", /invalid regular expression/, 3],
    ['error inside a condition has a line', 'a\n{% if pillar.conf.list|items|length > 0 %}{% endif %}', /items: expected a mapping/, 2],
    ['syntax error', 'a\n{{ 1 + }}', /unexpected token/, 2],
    ['syntax error at the end of the file', 'a\n{% if True %}\nb', /expected elif, else, or endif, got end of file/, 3],
    ['unknown filter', 'a: {{ 1|nosuchfilter }}', /filter not found: nosuchfilter/, 1],
  ];
  it.each(cases)('%s', (_title, template, message, line) => {
    const e = renderError(template, {}, { conf: { list: [1, 2] } });
    expect(e.code).toBe('SLS_RENDER');
    expect(e.message).toMatch(message);
    expect(e.message.startsWith(`${FILE}:${line}: `)).toBe(true);
    expect(e.details).toMatchObject({ file: FILE, line });
  });

  it('a variable the template binds itself may be named like a Salt global (opts, salt, grains)', () => {
    const files = { 'lib/m.njk': '{% macro mnt(dev, opts="defaults") %}{{ dev }} {{ opts }}{% endmacro %}' };
    const template = [
      '{% set opts = "noatime" %}a: {{ opts }}',
      '{% for salt in ["x"] %}b: {{ salt }}{% endfor %}',
      '{% from "lib/m.njk" import mnt as grains %}c: {{ grains("/dev/sdb1", opts="ro") }}',
    ].join('\n');
    expect(render(template, files)).toBe('a: noatime\nb: x\nc: /dev/sdb1 ro');
    // Binding one name frees only that name.
    const e = renderError('{% set opts = 1 %}\n{{ grains["os"] }}');
    expect(e.message).toMatch(/^states\/web\/init\.sls:2: Salt execution modules, grains and opts/);
  });

  it('an error in an imported template names that template and its line', () => {
    const e = renderError('{% include "web/bad.njk" %}', { 'web/bad.njk': 'ok\n{{ nope }}\n' });
    expect(e.message).toMatch(/^states\/web\/bad\.njk:2: `nope` is undefined/);
  });

  it('an error inside an imported macro names the macro file and its line, not the caller with the macro\'s line number', () => {
    const macros = 'x\n{% macro server() %}\n{{ pillar.get("k3s:server (no node has the k3s-server role)") }}\n{% endmacro %}\n';
    const e = renderError('a\n{% import "web/macros.njk" as m with context %}\nserver: {{ m.server() }}', { 'web/macros.njk': macros });
    expect(e.message).toMatch(/^states\/web\/macros\.njk:3: pillar\.get\('k3s:server \(no node has the k3s-server role\)'\): no such key/);
  });

  it('a Jinja-only construct in an imported template is rejected too', () => {
    const e = renderError('{% include "web/bad.njk" %}', { 'web/bad.njk': '\n{% do x %}' });
    expect(e.message).toMatch(/^states\/web\/bad\.njk:2: .*\{% do %\}/);
  });

  it('a missing import names the importing line', () => {
    const e = renderError('a\n{% import "nope.njk" as m %}');
    expect(e.message).toMatch(/^states\/web\/init\.sls:2: template "nope\.njk" is not in the state tree/);
  });

  it('templates cannot leave the state tree', () => {
    expect(renderError('{% include "../../etc/passwd" %}').message).toMatch(/leaves the state tree|not a path inside/);
    expect(renderError('{% include "/etc/passwd" %}').message).toMatch(/not a path inside the state tree/);
  });

  it('inline if and an if in brackets of a for are not loop filters; raw blocks are not checked', () => {
    expect(render("{% for x in ([1] if True else [2]) %}{{ x }}{% endfor %} {{ 'y' if True else 'n' }}")).toBe('1 y');
    expect(render("{% raw %}{{ 'a' % b }}{% endraw %}")).toBe("{{ 'a' % b }}");
    expect(render("{{ '}}' ~ 'x' }} {# {% do %} #}")).toBe('}}x ');
  });

  it('a set in a loop updates the outer variable (what to write instead of namespace)', () => {
    expect(render('{% set n = 0 %}{% for x in [1, 2, 3] %}{% set n = n + x %}{% endfor %}{{ n }}')).toBe('6');
  });

  it('a render cannot change the context seen by the next render', () => {
    const source = createMemorySource({ files: { 'a.sls': '{% set _ = pillar.list.push(9) %}{{ pillar.list|length }}' } });
    const renderer = createSlsRenderer(source, makeContext({ pillar: { list: [1] } }));
    expect(renderer.renderSls(source.read('a')!, 'a')).toBe('2');
    expect(renderer.renderSls(source.read('a')!, 'a')).toBe('2');
  });

  it('renderTemplate renders file contents with the node context', () => {
    const renderer = createSlsRenderer(createMemorySource({ files: {} }), makeContext());
    expect(renderer.renderTemplate('NodeName={{ node.name }} CPUs={{ facts.cpus }}', 'slurm/slurm.conf.njk')).toBe('NodeName=gpu01 CPUs=64');
    expect(() => renderer.renderTemplate('\n{{ nope }}', 'slurm/slurm.conf.njk')).toThrow(/^slurm\/slurm\.conf\.njk:2: `nope` is undefined/);
    expect(renderTemplateText('{{ node.group }}', 'f.njk', makeContext(), createMemorySource({ files: {} }))).toBe('gpu');
  });
});

describe('state render: templates cannot reach JavaScript', () => {
  // nunjucks has no sandbox: range.constructor is Function. Each of these ran code in the server before.
  it.each([
    ['a global\'s constructor', '{{ range.constructor("return process.pid")() }}', 'constructor'],
    ['a string\'s constructor by subscript', '{{ ("x")["constructor"]["constructor"]("return 1")() }}', 'constructor'],
    ['the context\'s own constructor (Object)', '{{ constructor.getOwnPropertyDescriptor }}', 'constructor'],
    ['a prototype', '{{ pillar.__proto__ }}', '__proto__'],
    ['a computed name', '{% set k = "constr" ~ "uctor" %}{{ cycler[k] }}', 'constructor'],
    // The attribute= filters follow paths themselves, past nunjucks' lookups.
    ["map(attribute=)", "{% set f = [1] | map(attribute='constructor.constructor') | first %}{{ f('return process.pid')() }}", 'constructor'],
    ['selectattr', "{{ [1] | selectattr('constructor.constructor') | list }}", 'constructor'],
    ['rejectattr', "{{ [1] | rejectattr('__proto__') | list }}", '__proto__'],
    ["unique(attribute=)", "{{ [1] | unique(attribute='constructor') | list }}", 'constructor'],
  ])('%s is refused with file and line', (_name, text, name) => {
    const e = renderError(`a: ${text}\n`);
    expect(e.code).toBe('SLS_RENDER');
    expect(e.message).toContain(FILE);
    expect(e.message).toContain(`templates may not use "${name}"`);
  });
  it('data stays data: a pillar value that looks like template code is written as text', () => {
    expect(render('a: {{ pillar.motd }}\n', {}, { motd: '{{ range.constructor("return 1")() }}' })).toBe('a: {{ range.constructor("return 1")() }}\n');
  });
});
