import { RackseedError } from '../model/errors.js';
import { isValidHostname } from '../model/hostname.js';
import { normalizeMac, type Mac } from '../model/mac.js';
import { parseCsv } from './csv.js';
import { isIpv4 } from '../model/ipv4.js';
import { isAddressOrDnsName, isValidGroupName } from './names.js';

/** One machine from a delivery sheet. */
export interface NodeCsvRow {
  file: string;
  line: number;
  name: string;
  macs: Mac[];
  ip?: string;
  /** BMC address only; the BMC kind comes from the inventory entry. */
  bmc?: string;
  rack?: string;
  slot?: number;
  group?: string;
}

export const NODE_CSV_COLUMNS = ['name', 'mac', 'ip', 'bmc', 'rack', 'slot', 'group'] as const;

function rowError(file: string, line: number, why: string): RackseedError {
  return new RackseedError('CSV_INVALID', `${file}:${line}: ${why}`, { file, line });
}

/**
 * Reads name,mac[,ip,bmc,rack,slot,group] rows. The mac field may list several MACs separated by spaces or
 * semicolons, for machines that may PXE boot from more than one port.
 */
export function parseNodeCsv(text: string, file: string): NodeCsvRow[] {
  const table = parseCsv(text, file);
  const headerLine = text.split(/\r?\n/).findIndex((l) => l.trim() !== '' && !l.trim().startsWith('#')) + 1;
  for (const col of table.header) {
    if (!(NODE_CSV_COLUMNS as readonly string[]).includes(col)) {
      throw rowError(file, headerLine, `unknown column "${col}" (expected columns: ${NODE_CSV_COLUMNS.join(', ')})`);
    }
  }
  for (const required of ['name', 'mac']) {
    if (!table.header.includes(required)) throw rowError(file, headerLine, `the header has no "${required}" column`);
  }

  const firstLine = new Map<string, number>();
  return table.records.map(({ line, fields }) => {
    const at = `${file}:${line}`;
    const name = fields.name ?? '';
    if (name === '') throw rowError(file, line, 'empty name');
    if (!isValidHostname(name)) {
      throw new RackseedError('HOSTNAME_INVALID', `${at} name: "${name}" is not a valid host name (RFC 1123: letters, digits and inner hyphens, at most 63)`, { file, line, value: name });
    }
    const seen = firstLine.get(name.toLowerCase());
    if (seen !== undefined) throw rowError(file, line, `${name} already appears on line ${seen}; one row per node`);
    firstLine.set(name.toLowerCase(), line);

    const macText = (fields.mac ?? '').trim();
    if (macText === '') throw rowError(file, line, `empty mac for ${name}`);
    const row: NodeCsvRow = { file, line, name, macs: macText.split(/[\s;]+/).map((m) => normalizeMac(m, `${at} mac`)) };

    const { ip, bmc, rack, slot, group } = fields;
    if (ip) {
      if (!isIpv4(ip)) throw rowError(file, line, `ip "${ip}" is not an IPv4 address (expected e.g. 10.0.0.1)`);
      row.ip = ip;
    }
    if (bmc) {
      if (!isAddressOrDnsName(bmc)) throw rowError(file, line, `bmc "${bmc}" is not an IPv4 address or host name`);
      row.bmc = bmc;
    }
    if (rack) row.rack = rack;
    if (slot) {
      if (!/^\d+$/.test(slot)) throw rowError(file, line, `slot "${slot}" is not a whole number`);
      row.slot = Number(slot);
    }
    if (group) {
      if (!isValidGroupName(group)) throw rowError(file, line, `group "${group}" is not a valid group name`);
      row.group = group;
    }
    return row;
  });
}
