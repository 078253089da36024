import { describe, expect, it } from 'vitest';
import { RackseedError } from '../../server/model/errors.js';
import { parseTop, slsForNode, type TopTarget } from '../../server/state/top.js';
import { DEBIAN_FACTS } from '../fixtures/sls/context.js';

const TOP = `base:
  '*':
    - base
  'gpu[0-9]*':
    - nvidia
  'gpu01,login01':
    - match: list
    - debug
  'comp*':
    - match: group
    - slurm.compute
  'slurm-ctl*':
    - match: role
    - slurm.controller
  'osFamily:redhat':
    - match: fact
    - redhat.repos
  'gpus:model:*H100*':
    - match: fact
    - nvidia.h100
  'nics:name:ib*':
    - match: fact
    - infiniband
  'gpus:*':
    - match: fact
    - base
    - gpu.monitoring
  'rack:r2':
    - match: label
    - rack2
  'features:k3s:True':
    - match: pillar
    - k3s
`;

function target(overrides: Partial<TopTarget>): TopTarget {
  return { name: 'node1', group: 'misc', roles: [], labels: {}, facts: { ...DEBIAN_FACTS, gpus: [], nics: [] }, pillar: {}, ...overrides };
}

describe('top.sls targeting', () => {
  const top = parseTop(TOP, 'states/top.sls');
  const cases: Array<[string, Partial<TopTarget>, string[]]> = [
    ['every node gets "*"', {}, ['base']],
    ['host-name glob', { name: 'gpu07' }, ['base', 'nvidia']],
    ['list', { name: 'login01' }, ['base', 'debug']],
    ['list and glob, de-duplicated in top order', { name: 'gpu01' }, ['base', 'nvidia', 'debug']],
    ['group glob', { group: 'compute' }, ['base', 'slurm.compute']],
    ['role glob over each role', { roles: ['login', 'slurm-ctld'] }, ['base', 'slurm.controller']],
    ['fact key:value', { facts: { ...DEBIAN_FACTS, osFamily: 'redhat', gpus: [], nics: [] } }, ['base', 'redhat.repos']],
    ['fact path into a list (any GPU matches); "gpus:*" means has a GPU', { facts: DEBIAN_FACTS }, ['base', 'nvidia.h100', 'gpu.monitoring']],
    ['fact on NIC names', { facts: { ...DEBIAN_FACTS, gpus: [], nics: [{ name: 'ibp1s0', mac: 'x', addresses: [], state: 'up' }] } }, ['base', 'infiniband']],
    ['label', { labels: { rack: 'r2' } }, ['base', 'rack2']],
    ['pillar of this node', { pillar: { features: { k3s: true } } }, ['base', 'k3s']],
  ];
  it.each(cases)('%s', (_title, node, expected) => {
    expect(slsForNode(top, target(node)).map((e) => e.sls)).toEqual(expected);
  });

  it('records where each SLS was named', () => {
    expect(slsForNode(top, target({ name: 'gpu01' }))[1]).toEqual({ sls: 'nvidia', source: { file: 'states/top.sls', line: 5 } });
  });

  it('an empty top gives nothing', () => {
    expect(slsForNode(parseTop('', 'top.sls'), target({}))).toEqual([]);
    expect(slsForNode(parseTop('base:\n', 'top.sls'), target({}))).toEqual([]);
  });

  const errors: Array<[string, string, RegExp]> = [
    ['another environment', 'dev:\n  "*": [base]\n', /^top\.sls:1: environment "dev": only "base" is supported/],
    ['unknown matcher', 'base:\n  x:\n    - match: grain\n    - a\n', /^top\.sls:3: target "x": unknown match "grain"/],
    ['fact without key:value', 'base:\n  debian:\n    - match: fact\n    - a\n', /^top\.sls:2: target "debian": match fact needs "key:glob"/],
    ['not a list', 'base:\n  x: a\n', /^top\.sls:2: target "x": must be a list/],
    ['bad YAML', 'base:\n  x: [a\n', /^top\.sls:\d+: is not valid YAML/],
  ];
  it.each(errors)('errors name file and line: %s', (_title, text, message) => {
    try {
      parseTop(text, 'top.sls');
    } catch (e) {
      expect(e).toBeInstanceOf(RackseedError);
      expect((e as RackseedError).code).toBe('SLS_INVALID');
      expect((e as RackseedError).message).toMatch(message);
      return;
    }
    throw new Error('expected an error');
  });
});
