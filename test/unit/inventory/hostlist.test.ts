import { describe, expect, test } from 'vitest';
import { compressHostlist, expandHostlist } from '../../../server/inventory/index.js';
import { isRackseedError } from '../../../server/model/errors.js';

describe('expandHostlist', () => {
  test.each([
    ['head01', ['head01']],
    ['gpu[001-004]', ['gpu001', 'gpu002', 'gpu003', 'gpu004']],
    ['n[1-3,7,10-12]', ['n1', 'n2', 'n3', 'n7', 'n10', 'n11', 'n12']],
    ['n[8-10]', ['n8', 'n9', 'n10']],
    ['n[08-10]', ['n08', 'n09', 'n10']],
    ['n[098-101]', ['n098', 'n099', 'n100', 'n101']],
    ['r[1-2]n[01-02]', ['r1n01', 'r1n02', 'r2n01', 'r2n02']],
    ['gpu[1-2],head01', ['gpu1', 'gpu2', 'head01']],
    ['a[1-2]b,c[3]', ['a1b', 'a2b', 'c3']],
    ['n[5]', ['n5']],
    [' a , b ', ['a', 'b']],
  ])('%s', (expr, names) => {
    expect(expandHostlist(expr)).toEqual(names);
  });

  test.each([
    ['n[3-1]', /reversed/],
    ['n[]', /empty brackets/],
    ['n[1-3', /"\[" without "\]"/],
    ['n1-3]', /"\]" without "\["/],
    ['n[1-a]', /not a number/],
    ['n[1,,2]', /not a number/],
    ['n[[1-2]]', /nested/],
    ['a,,b', /empty host name/],
    ['', /empty host name/],
    ['n[1-100001]', /100001 hosts, more than the limit of 100000/],
    ['r[1-1000]n[1-1000]', /1000000 hosts/],
  ])('rejects %j', (expr, why) => {
    let err: unknown;
    try {
      expandHostlist(expr);
    } catch (e) {
      err = e;
    }
    expect(isRackseedError(err) && err.code).toBe('HOSTLIST_INVALID');
    expect((err as Error).message).toMatch(why);
  });

  test('the limit itself is allowed', () => {
    expect(expandHostlist('n[1-100000]')).toHaveLength(100_000);
  });
});

describe('compressHostlist', () => {
  test.each([
    [['gpu001', 'gpu002', 'gpu003', 'gpu004', 'head01'], 'gpu[001-004],head01'],
    [['head01', 'gpu004', 'gpu002', 'gpu003', 'gpu001'], 'gpu[001-004],head01'],
    [['n1', 'n2', 'n3', 'n7', 'n10', 'n11', 'n12'], 'n[1-3,7,10-12]'],
    [['n08', 'n09', 'n10'], 'n[08-10]'],
    [['n8', 'n9', 'n10'], 'n[8-10]'],
    [['login'], 'login'],
    [['a', 'b', 'a'], 'a,b'],
    [['r1n01', 'r1n02', 'r2n01'], 'r1n[01-02],r2n01'],
    [['n1', 'n01'], 'n01,n1'],
    [['gpu1-ib', 'gpu2-ib'], 'gpu[1-2]-ib'],
    [[], ''],
  ])('%j -> %s', (names, text) => {
    expect(compressHostlist(names)).toBe(text);
  });

  test.each([['gpu[001-128],head[1-2],n[1-3,7,10-12],x'], ['r[1-3]n[01-16]'], ['a[8-10],a[08-12]']])('expand(compress(%s)) keeps the names', (expr) => {
    const names = expandHostlist(expr);
    expect(new Set(expandHostlist(compressHostlist(names)))).toEqual(new Set(names));
  });
});
