/** One schema step. Versions are applied in ascending order, each in its own transaction, and never edited once shipped. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}
