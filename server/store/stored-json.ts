/**
 * JSON text for the stores' JSON columns, identical for SQLite and PostgreSQL. PostgreSQL's jsonb (and text) cannot
 * hold U+0000, which command output does carry (`cat /proc/1/environ`): the write would fail there and succeed on
 * SQLite, and a state run would converge on one store and crash on the other. Both stores therefore keep NUL as
 * U+FFFD, the replacement character, in every string value.
 */
const NUL = /\u0000/g;

/** A free-text column (a failure's reason), kept the way storedJson keeps strings. */
export function storedText(value: string): string {
  return value.includes('\u0000') ? value.replace(NUL, '\uFFFD') : value;
}

export function storedJson(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, v: unknown) => (typeof v === 'string' ? storedText(v) : v));
}
