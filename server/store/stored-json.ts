import { wellFormed } from '../util/printable.js';

/**
 * JSON text for the stores' JSON columns, identical for SQLite and PostgreSQL. PostgreSQL's jsonb (and text) cannot
 * hold U+0000, which command output does carry (`cat /proc/1/environ`): the write would fail there and succeed on
 * SQLite, and a state run would converge on one store and crash on the other. Both stores therefore keep NUL as
 * U+FFFD, the replacement character, in every string value.
 */
const NUL = /\u0000/g;

/**
 * A free-text column (a failure's reason), kept the way storedJson keeps strings. A lone surrogate (half of an emoji
 * cut off) is not text either: PostgreSQL refuses it and SQLite garbles it, so it becomes U+FFFD too.
 */
export function storedText(value: string): string {
  return wellFormed(value.includes('\u0000') ? value.replace(NUL, '\uFFFD') : value);
}

export function storedJson(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, v: unknown) => {
    if (typeof v === 'string') return storedText(v);
    // Keys too: a node's stage detail is a map whose keys the node chose.
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).some((k) => storedText(k) !== k)) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [storedText(k), x]));
    }
    return v;
  });
}
