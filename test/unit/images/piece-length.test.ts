import { describe, expect, it } from 'vitest';
import { defaultPieceLength } from '../../../server/images/torrent.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

describe('defaultPieceLength: about 4096 pieces, 64 KiB to 4 MiB', () => {
  it.each([
    { size: 1, expected: 64 * KiB },
    { size: 8 * MiB, expected: 64 * KiB },
    { size: 256 * MiB, expected: 64 * KiB },
    { size: 256 * MiB + 1, expected: 128 * KiB },
    { size: 1 * GiB, expected: 256 * KiB },
    { size: 2 * GiB, expected: 512 * KiB },
    { size: 16 * GiB, expected: 4 * MiB },
    { size: 16 * GiB + 1, expected: 4 * MiB },
    { size: 64 * GiB, expected: 4 * MiB },
  ])('$size bytes -> $expected', ({ size, expected }) => {
    expect(defaultPieceLength(size)).toBe(expected);
  });

  it('never gives more than 4096 pieces below the 4 MiB cap', () => {
    for (let size = MiB; size <= 32 * GiB; size = Math.ceil(size * 1.37)) {
      const pieceLength = defaultPieceLength(size);
      expect(Math.log2(pieceLength) % 1).toBe(0);
      if (pieceLength < 4 * MiB) expect(Math.ceil(size / pieceLength)).toBeLessThanOrEqual(4096);
    }
  });
});
