import { readFileSync } from 'node:fs';
import { RackseedError } from '../model/errors.js';
import type { Inventory } from '../model/inventory.js';
import type { CsvReader } from './entries.js';
import { csvPathFor, parseInventory } from './parse.js';

/** Reads csv: files next to the inventory file, as the inventory's relative paths mean. */
export function csvReaderFor(file: string): CsvReader {
  return (rel) => readFileSync(csvPathFor(file, rel), 'utf8');
}

/** The only part of the inventory code that touches the file system. */
export function loadInventory(file: string): Inventory {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new RackseedError('CONFIG_NOT_FOUND', `cannot read inventory ${file}: ${why}`, { file }, { cause: err });
  }
  return parseInventory(text, file, csvReaderFor(file));
}
