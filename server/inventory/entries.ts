import { isRackseedError } from '../model/errors.js';
import { isValidHostname } from '../model/hostname.js';
import { nicMacProblem, parseMac, type Mac } from '../model/mac.js';
import type { Bmc, Group, NodeOverrides, NodeSpec } from '../model/inventory.js';
import { expandHostlist } from './hostlist.js';
import { addToIpv4, isIpv4 } from '../model/ipv4.js';
import { isAddressOrDnsName } from './names.js';
import { parseNodeCsv, type NodeCsvRow } from './node-csv.js';
import { nodeEntrySchema, rangeEntrySchema, type NodeEntryInput, type RangeEntryInput } from './schema.js';
import type { KeyPath, SourceLocator } from '../util/source-locator.js';
import { parseAt } from '../util/zod-located.js';

/** Reads a CSV file named by a range's `csv:` key, relative to the inventory file. */
export type CsvReader = (relPath: string) => string;

/** A node spec plus where it was declared, for error messages that name both sides of a conflict. */
export interface LocatedSpec {
  spec: NodeSpec;
  /** Index of the entry under nodes:. */
  index: number;
  /** The delivery-sheet row the node's MACs and addresses came from, if any. */
  csv?: { file: string; line: number };
}

/** "inventory.yaml:9 nodes[1] range gpu[001-004] (gpu003, gpu-macs.csv:4)" */
export function describeEntry(e: LocatedSpec): string {
  const { file, line, range } = e.spec.origin;
  const at = line === undefined ? file : `${file}:${line}`;
  const csv = e.csv ? `, ${e.csv.file}:${e.csv.line}` : '';
  return `${at} nodes[${e.index}]${range ? ` range ${range}` : ''} (${e.spec.name}${csv})`;
}

interface Context {
  where: SourceLocator;
  groups: ReadonlyMap<string, Group>;
  readCsv: CsvReader;
  /** Joins a csv: value to the inventory's directory, for messages. */
  csvName: (rel: string) => string;
}

/** Expands the nodes: list into one located spec per node, in file order. */
export function buildSpecs(entries: readonly unknown[], ctx: Context): LocatedSpec[] {
  return entries.flatMap((raw, index) => {
    const path: KeyPath = ['nodes', index];
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw ctx.where.error('INVENTORY_INVALID', path, 'expected a node entry: a map with name: (one node) or range: (several)');
    }
    return 'range' in raw
      ? rangeSpecs(parseAt(rangeEntrySchema, raw, path, ctx.where, 'INVENTORY_INVALID'), index, ctx)
      : [singleSpec(parseAt(nodeEntrySchema, raw, path, ctx.where, 'INVENTORY_INVALID'), index, ctx)];
  });
}

function singleSpec(e: NodeEntryInput, index: number, ctx: Context): LocatedSpec {
  const path: KeyPath = ['nodes', index];
  const { where } = ctx;
  if (!isValidHostname(e.name)) throw hostnameError(where, [...path, 'name'], e.name);
  if (e.mac !== undefined && e.macs !== undefined) {
    throw where.error('INVENTORY_INVALID', [...path, 'macs'], 'use either mac: (one address) or macs: (a list), not both');
  }
  const macs =
    e.macs !== undefined
      ? e.macs.map((m, i) => macAt(where, [...path, 'macs', i], m))
      : e.mac !== undefined
        ? [macAt(where, [...path, 'mac'], e.mac)]
        : [];
  if (e.ip !== undefined) checkIp(where, [...path, 'ip'], e.ip);
  if (e.bmc && !isAddressOrDnsName(e.bmc.address)) throw bmcError(where, [...path, 'bmc', 'address'], e.bmc.address);
  const spec: NodeSpec = {
    name: e.name,
    macs,
    labels: labelsWithRack(e.labels, e.rack, where, path),
    overrides: overridesOf(e.overrides),
    origin: { file: where.file, ...lineOf(where, path) },
    ...(e.ip !== undefined ? { ip: e.ip } : {}),
    ...(e.group !== undefined ? { group: checkGroup(ctx, [...path, 'group'], e.group) } : {}),
    ...(e.bmc ? { bmc: { address: e.bmc.address, kind: e.bmc.kind, ...(e.bmc.boot_mode ? { bootMode: e.bmc.boot_mode } : {}) } } : {}),
    ...(e.rack !== undefined ? { rack: e.rack } : {}),
    ...(e.slot !== undefined ? { slot: e.slot } : {}),
  };
  return { spec, index };
}

function rangeSpecs(e: RangeEntryInput, index: number, ctx: Context): LocatedSpec[] {
  const path: KeyPath = ['nodes', index];
  const { where } = ctx;
  const rangePath = [...path, 'range'];
  let names: string[];
  try {
    names = expandHostlist(e.range);
  } catch (err) {
    if (isRackseedError(err)) throw where.error(err.code, rangePath, err.message);
    throw err;
  }
  for (const name of names) {
    if (!isValidHostname(name)) throw hostnameError(where, rangePath, name, ` (from ${e.range})`);
  }
  if (e.ip !== undefined) checkIp(where, [...path, 'ip'], e.ip);
  if (e.bmc && !isAddressOrDnsName(e.bmc.address)) throw bmcError(where, [...path, 'bmc', 'address'], e.bmc.address);
  if (e.bmc && !isIpv4(e.bmc.address) && names.length > 1) {
    throw where.error('INVENTORY_INVALID', [...path, 'bmc', 'address'], 'the nodes of a range cannot share one BMC host name; give the first IPv4 address or use the csv bmc column');
  }
  const group = e.group !== undefined ? checkGroup(ctx, [...path, 'group'], e.group) : undefined;
  const rows = e.csv !== undefined ? csvRows(ctx, [...path, 'csv'], e.csv, e.range, names) : new Map<string, NodeCsvRow>();
  const labels = labelsWithRack(e.labels, e.rack, where, path);
  const origin = { file: where.file, ...lineOf(where, path), range: e.range };

  return names.map((name, k) => {
    const row = rows.get(name);
    const ip = row?.ip ?? (e.ip !== undefined ? nth(where, [...path, 'ip'], e.ip, k, e.range) : undefined);
    const bmcAddress = row?.bmc ?? (e.bmc ? (isIpv4(e.bmc.address) ? nth(where, [...path, 'bmc', 'address'], e.bmc.address, k, e.range) : e.bmc.address) : undefined);
    const bmc: Bmc | undefined =
      bmcAddress !== undefined ? { address: bmcAddress, kind: e.bmc?.kind ?? 'ipmi', ...(e.bmc?.boot_mode ? { bootMode: e.bmc.boot_mode } : {}) } : undefined;
    const rack = row?.rack ?? e.rack;
    const slot = row?.slot ?? (e.slot !== undefined ? e.slot + k : undefined);
    const rowGroup = row?.group !== undefined ? checkGroup(ctx, [...path, 'csv'], row.group, `${row.file}:${row.line}`) : undefined;
    const spec: NodeSpec = {
      name,
      macs: row?.macs ?? [],
      labels: row?.rack !== undefined ? { ...labels, rack: row.rack } : { ...labels },
      overrides: overridesOf(e.overrides),
      origin: { ...origin },
      ...(ip !== undefined ? { ip } : {}),
      ...((rowGroup ?? group) !== undefined ? { group: rowGroup ?? group } : {}),
      ...(bmc ? { bmc } : {}),
      ...(rack !== undefined ? { rack } : {}),
      ...(slot !== undefined ? { slot } : {}),
    };
    return { spec, index, ...(row ? { csv: { file: row.file, line: row.line } } : {}) };
  });
}

function csvRows(ctx: Context, path: KeyPath, rel: string, range: string, names: string[]): Map<string, NodeCsvRow> {
  const file = ctx.csvName(rel);
  let text: string;
  try {
    text = ctx.readCsv(rel);
  } catch (err) {
    if (isRackseedError(err)) throw err;
    const why = err instanceof Error ? err.message : String(err);
    throw ctx.where.error('INVENTORY_INVALID', path, `cannot read ${file}: ${why}`);
  }
  const inRange = new Set(names);
  const rows = new Map<string, NodeCsvRow>();
  for (const row of parseNodeCsv(text, file)) {
    if (!inRange.has(row.name)) {
      throw ctx.where.error('CSV_INVALID', path, `${file}:${row.line}: ${row.name} is not in range ${range}`, { csvFile: file, csvLine: row.line });
    }
    rows.set(row.name, row);
  }
  return rows;
}

/** The k-th address of a range that starts at `start`. */
function nth(where: SourceLocator, path: KeyPath, start: string, k: number, range: string): string {
  const ip = addToIpv4(start, k);
  if (ip === undefined) throw where.error('INVENTORY_INVALID', path, `${range} needs ${k + 1} addresses from ${start}, past 255.255.255.255`);
  return ip;
}

function lineOf(where: SourceLocator, path: KeyPath): { line?: number } {
  const line = where.line(path);
  return line === undefined ? {} : { line };
}

function macAt(where: SourceLocator, path: KeyPath, text: string): Mac {
  const mac = parseMac(text);
  if (!mac) throw where.error('MAC_INVALID', path, `"${text}" is not a MAC address (expected e.g. 52:54:00:12:34:56)`, { value: text });
  const problem = nicMacProblem(mac);
  if (problem) throw where.error('MAC_INVALID', path, `"${text}" ${problem}`, { value: text });
  return mac;
}

function checkIp(where: SourceLocator, path: KeyPath, ip: string): void {
  if (!isIpv4(ip)) throw where.error('INVENTORY_INVALID', path, `"${ip}" is not an IPv4 address (expected e.g. 10.0.0.1)`, { value: ip });
}

function hostnameError(where: SourceLocator, path: KeyPath, name: string, from = '') {
  return where.error(
    'HOSTNAME_INVALID',
    path,
    `"${name}"${from} is not a valid host name (RFC 1123: letters, digits and inner hyphens, at most 63 characters)`,
    { value: name },
  );
}

function bmcError(where: SourceLocator, path: KeyPath, address: string) {
  return where.error('INVENTORY_INVALID', path, `"${address}" is not an IPv4 address or host name`, { value: address });
}

function checkGroup(ctx: Context, path: KeyPath, name: string, from?: string): string {
  if (ctx.groups.has(name)) return name;
  const known = [...ctx.groups.keys()].sort().join(', ') || 'none defined';
  const src = from ? `${from}: ` : '';
  throw ctx.where.error('INVENTORY_INVALID', path, `${src}group "${name}" does not exist (groups: ${known})`, { group: name });
}

/** rack: is shorthand for a label, so selectors can match on it; the two must not disagree. */
function labelsWithRack(labels: Record<string, string>, rack: string | undefined, where: SourceLocator, path: KeyPath) {
  if (rack === undefined) return { ...labels };
  if (labels.rack !== undefined && labels.rack !== rack) {
    throw where.error('INVENTORY_INVALID', [...path, 'labels', 'rack'], `label rack "${labels.rack}" contradicts rack: ${rack}`);
  }
  return { ...labels, rack };
}

function overridesOf(o: NodeEntryInput['overrides']): NodeOverrides {
  return {
    ...(o.image !== undefined ? { image: o.image } : {}),
    ...(o.roles !== undefined ? { roles: o.roles } : {}),
    ...(o.kernel_args !== undefined ? { kernelArgs: o.kernel_args } : {}),
    ...(o.data !== undefined ? { data: o.data } : {}),
  };
}
