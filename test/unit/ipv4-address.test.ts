import { describe, expect, it } from 'vitest';

import { plainAddress } from '../../server/model/ipv4.js';

describe('plainAddress', () => {
  it.each([
    ['::ffff:10.0.0.12', '10.0.0.12'],
    ['::FFFF:192.168.1.5', '192.168.1.5'],
    ['10.0.0.12', '10.0.0.12'],
    // Not IPv4-mapped: a real IPv6 address, or a mapped prefix in front of something that is not a dotted quad.
    ['fe80::1', 'fe80::1'],
    ['::1', '::1'],
    ['::ffff:0a00:000c', '::ffff:0a00:000c'],
    ['::ffff:10.0.0.256', '::ffff:10.0.0.256'],
    ['unknown', 'unknown'],
  ])('%s -> %s', (address, plain) => {
    expect(plainAddress(address)).toBe(plain);
  });
});
