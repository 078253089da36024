import { z } from 'zod';

/** Edit distance, to suggest the key a typo was meant to be. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

export function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const near = allowed.filter((k) => distance(k, key) <= 2).sort((x, y) => distance(x, key) - distance(y, key));
  const hint = near[0] ? `did you mean "${near[0]}"? ` : '';
  return `unknown key "${key}" (${hint}expected one of: ${allowed.join(', ')})`;
}

/** Unknown keys are errors, not noise: in a hand-edited file they are nearly always typos (mca:, kernel_arg:). */
export function strict<T extends z.ZodRawShape>(shape: T) {
  const allowed = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? unknownKeyMessage(iss.keys[0] ?? '', allowed) : undefined),
  });
}
