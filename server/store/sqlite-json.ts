import { storedJson } from './stored-json.js';

/** JSON columns: written only by this store, so parsing trusts the shape. */
export function toJson(value: unknown): string {
  return storedJson(value);
}

export function fromJson<T>(text: string): T {
  return JSON.parse(text) as T;
}

/** SQLite NULL -> an absent key, so rows compare equal to objects built without the optional field. */
export function opt<T>(value: T | null): T | undefined {
  return value === null ? undefined : value;
}
