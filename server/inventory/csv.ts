import { RackseedError } from '../model/errors.js';

export interface CsvRecord {
  /** 1-based line in the CSV file, for error messages. */
  line: number;
  /** Field values keyed by the (lower-cased) header names; missing trailing fields are absent. */
  fields: Record<string, string>;
}

export interface CsvTable {
  header: string[];
  records: CsvRecord[];
}

function csvError(file: string, line: number, why: string): RackseedError {
  return new RackseedError('CSV_INVALID', `${file}:${line}: ${why}`, { file, line });
}

/** One line into fields. Quoted fields may hold commas and doubled quotes, but not line breaks. */
function splitLine(text: string, file: string, line: number): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw csvError(file, line, 'unterminated quoted field');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i];
        i++;
      }
      while (text[i] === ' ' || text[i] === '\t') i++;
      if (i < text.length && text[i] !== ',') throw csvError(file, line, 'text after a closing quote');
      fields.push(value);
    } else {
      const end = text.indexOf(',', i);
      const raw = end === -1 ? text.slice(i) : text.slice(i, end);
      if (raw.includes('"')) throw csvError(file, line, 'a quote inside an unquoted field (quote the whole field)');
      fields.push(raw.trim());
      i = end === -1 ? text.length : end;
    }
    if (i >= text.length) return fields;
    i++; // the comma
  }
}

/**
 * A deliberately small CSV reader for the delivery sheets vendors send: a header row, then one record per
 * line. Blank lines and lines starting with # are skipped so operators can annotate the sheet.
 */
export function parseCsv(text: string, file: string): CsvTable {
  let header: string[] | undefined;
  const records: CsvRecord[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((content, index) => {
    const line = index + 1;
    const trimmed = content.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const values = splitLine(content, file, line);
    if (!header) {
      header = values.map((h) => h.toLowerCase());
      const seen = new Set<string>();
      for (const h of header) {
        if (h === '') throw csvError(file, line, 'empty column name in the header');
        if (seen.has(h)) throw csvError(file, line, `column "${h}" appears twice in the header`);
        seen.add(h);
      }
      return;
    }
    if (values.length > header.length) {
      throw csvError(file, line, `${values.length} fields but the header has ${header.length} columns`);
    }
    const fields: Record<string, string> = {};
    values.forEach((v, i) => {
      fields[header![i]!] = v;
    });
    records.push({ line, fields });
  });
  if (!header) throw csvError(file, 1, 'no header row (expected e.g. "name,mac")');
  return { header, records };
}
