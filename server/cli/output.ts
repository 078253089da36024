import Table from 'cli-table3';

export interface Output {
  json: boolean;
  write(text: string): void;
}

/** A plain table for people: no colours (they end up in logs and tickets), fixed column order. */
export function table(head: string[], rows: Array<Array<string | number | undefined>>): string {
  const t = new Table({ head, style: { head: [], border: [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
  for (const r of rows) t.push(r.map((c) => (c === undefined ? '-' : String(c))));
  return t.toString();
}

export function printJson(out: Output, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** key: value lines, aligned. */
export function keyValues(pairs: Array<[string, string | number | boolean | undefined]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v === undefined ? '-' : String(v)}`).join('\n');
}
