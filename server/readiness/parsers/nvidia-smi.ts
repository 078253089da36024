import { children, childText, parseXml, type XmlElement } from './xml.js';

/**
 * Pure parsers for the three shapes of nvidia-smi output a readiness check meets:
 *   - `nvidia-smi -q -x`                      XML (the collection command's main part)
 *   - `nvidia-smi --query-gpu=... --format=csv` CSV with a header (fields by name, units stripped)
 *   - `nvidia-smi -q`                         the indented human-readable report
 * All three become one NvidiaReport, so the checks never care which one a node produced.
 */

export interface GpuInfo {
  /** Position in the output (nvidia-smi's index order). */
  index: number;
  busId?: string;
  name: string;
  /** Framebuffer total (memory.total), MiB. */
  memoryMiB?: number;
  /** '9.0', when the output carries it (compute_cap query field, drivers >= 510). */
  computeCap?: string;
  /** A page is waiting to be retired (pending_retirement / pending_blacklist = Yes). */
  retiredPagesPending?: boolean;
  /** A row remap is pending (needs a GPU reset) or a remap failed. */
  remappedRowsPending?: boolean;
  remappedRowsFailure?: boolean;
}

export interface NvidiaReport {
  format: 'xml' | 'csv' | 'text';
  driverVersion?: string;
  cudaVersion?: string;
  /** The header's attached_gpus / "Attached GPUs", when present (may disagree with gpus.length if trimmed). */
  attachedGpus?: number;
  gpus: GpuInfo[];
}

/** 'N/A', '[N/A]', '[Not Supported]', '' -> undefined. */
function value(s: string | undefined): string | undefined {
  const v = s?.trim();
  if (v === undefined || v === '' || /^\[?(N\/A|Not Supported|Unknown Error|Insufficient Permissions)\]?$/i.test(v)) return undefined;
  return v;
}

/** '81559 MiB' -> 81559. */
function mib(s: string | undefined): number | undefined {
  const v = value(s);
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(MiB)?$/i.exec(v);
  return m ? Number(m[1]) : undefined;
}

function yesNo(s: string | undefined): boolean | undefined {
  const v = value(s)?.toLowerCase();
  return v === 'yes' ? true : v === 'no' ? false : undefined;
}

function int(s: string | undefined): number | undefined {
  const v = value(s);
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

function anyTrue(...xs: Array<boolean | undefined>): boolean | undefined {
  if (xs.some((x) => x === true)) return true;
  return xs.some((x) => x === false) ? false : undefined;
}

function withOptional<T extends object>(base: T, extra: Record<string, unknown>): T {
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) (base as Record<string, unknown>)[k] = v;
  return base;
}

// ---------------------------------------------------------------------------------------------------------------
// XML

function xmlGpu(gpu: XmlElement, index: number): GpuInfo {
  // fb_memory_usage is read as a direct child of <gpu>: MIG devices nest their own fb_memory_usage deeper.
  return withOptional<GpuInfo>({ index, name: childText(gpu, 'product_name') ?? 'unknown' }, {
    busId: gpu.attrs['id'] ?? value(childText(gpu, 'pci', 'pci_bus_id')),
    memoryMiB: mib(childText(gpu, 'fb_memory_usage', 'total')),
    computeCap: value(childText(gpu, 'compute_cap')),
    retiredPagesPending: anyTrue(yesNo(childText(gpu, 'retired_pages', 'pending_retirement')), yesNo(childText(gpu, 'retired_pages', 'pending_blacklist'))),
    remappedRowsPending: yesNo(childText(gpu, 'remapped_rows', 'remapped_row_pending')),
    remappedRowsFailure: yesNo(childText(gpu, 'remapped_rows', 'remapped_row_failure')),
  });
}

export function parseNvidiaSmiXml(text: string): NvidiaReport {
  const log = children(parseXml(text), 'nvidia_smi_log')[0];
  return withOptional<NvidiaReport>({ format: 'xml', gpus: children(log, 'gpu').map(xmlGpu) }, {
    driverVersion: value(childText(log, 'driver_version')),
    cudaVersion: value(childText(log, 'cuda_version')),
    attachedGpus: int(childText(log, 'attached_gpus')),
  });
}

// ---------------------------------------------------------------------------------------------------------------
// CSV (--query-gpu with a header)

/** Splits one CSV line of nvidia-smi output (no quoting is used by nvidia-smi; names contain no commas). */
function cells(line: string): string[] {
  return line.split(',').map((c) => c.trim());
}

/** Rows keyed by field name ('memory.total [MiB]' -> 'memory.total'). Needs the header line. */
export function parseQueryGpuCsv(text: string): Array<Record<string, string>> {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '');
  const header = lines[0];
  if (header === undefined) return [];
  const fields = cells(header).map((f) => f.replace(/\s*\[[^\]]*\]$/, ''));
  return lines.slice(1).map((line) => {
    const row: Record<string, string> = {};
    cells(line).forEach((c, i) => {
      const f = fields[i];
      if (f !== undefined) row[f] = c;
    });
    return row;
  });
}

export function parseNvidiaSmiCsv(text: string): NvidiaReport {
  const rows = parseQueryGpuCsv(text);
  const gpus = rows.map((r, i) =>
    withOptional<GpuInfo>({ index: int(r['index']) ?? i, name: value(r['name']) ?? 'unknown' }, {
      busId: value(r['pci.bus_id']),
      memoryMiB: mib(r['memory.total']),
      computeCap: value(r['compute_cap']),
      retiredPagesPending: yesNo(r['retired_pages.pending']),
      remappedRowsPending: yesNo(r['remapped_rows.pending']),
      remappedRowsFailure: yesNo(r['remapped_rows.failure']),
    }),
  );
  const first = rows[0] ?? {};
  return withOptional<NvidiaReport>({ format: 'csv', gpus }, { driverVersion: value(first['driver_version']), attachedGpus: int(first['count']) });
}

// ---------------------------------------------------------------------------------------------------------------
// `nvidia-smi -q` text

interface TextNode {
  key: string;
  value?: string;
  children: TextNode[];
}

/** The indented report as a tree: `Key : Value` leaves, bare `Key` lines open a section for deeper lines. */
export function parseQueryTextTree(text: string): TextNode[] {
  const root: TextNode = { key: '#root', children: [] };
  const stack: Array<{ indent: number; node: TextNode }> = [{ indent: -1, node: root }];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '').replace(/\t/g, '    ');
    if (line.trim() === '' || /^=+\s*NVSMI LOG\s*=+$/.test(line.trim())) continue;
    const indent = line.length - line.trimStart().length;
    // The key is padded with spaces before the colon; "GPU 00000000:19:00.0" has colons but no " : ".
    const m = /^(\S.*?)\s+:(?:\s(.*))?$/.exec(line.trim());
    const node: TextNode = m ? { key: m[1]!, value: (m[2] ?? '').trim(), children: [] } : { key: line.trim(), children: [] };
    while (stack.length > 1 && stack[stack.length - 1]!.indent >= indent) stack.pop();
    stack[stack.length - 1]!.node.children.push(node);
    stack.push({ indent, node });
  }
  return root.children;
}

function textAt(nodes: readonly TextNode[], ...path: string[]): string | undefined {
  let level = nodes;
  let found: TextNode | undefined;
  for (const key of path) {
    found = level.find((n) => n.key.toLowerCase() === key.toLowerCase());
    if (!found) return undefined;
    level = found.children;
  }
  return found?.value;
}

export function parseNvidiaSmiQueryText(text: string): NvidiaReport {
  const top = parseQueryTextTree(text);
  const gpus = top
    .filter((n) => /^GPU [0-9A-Fa-f:.]+$/.test(n.key))
    .map((g, index) =>
      withOptional<GpuInfo>({ index, name: value(textAt(g.children, 'Product Name')) ?? 'unknown', busId: g.key.slice(4) }, {
        memoryMiB: mib(textAt(g.children, 'FB Memory Usage', 'Total')),
        computeCap: value(textAt(g.children, 'Compute Capability')),
        retiredPagesPending: anyTrue(yesNo(textAt(g.children, 'Retired Pages', 'Pending Page Blacklist')), yesNo(textAt(g.children, 'Retired Pages', 'Pending'))),
        remappedRowsPending: yesNo(textAt(g.children, 'Remapped Rows', 'Pending')),
        remappedRowsFailure: yesNo(textAt(g.children, 'Remapped Rows', 'Remapping Failure Occurred')),
      }),
    );
  return withOptional<NvidiaReport>({ format: 'text', gpus }, {
    driverVersion: value(textAt(top, 'Driver Version')),
    cudaVersion: value(textAt(top, 'CUDA Version')),
    attachedGpus: int(textAt(top, 'Attached GPUs')),
  });
}

// ---------------------------------------------------------------------------------------------------------------

/** Which of the three shapes `text` is, or undefined for anything else (an error message, the default table). */
export function detectNvidiaFormat(text: string): NvidiaReport['format'] | undefined {
  const t = text.trimStart();
  if (t.startsWith('<?xml') || t.startsWith('<nvidia_smi_log') || t.startsWith('<!DOCTYPE nvidia_smi_log')) return 'xml';
  if (/^=+\s*NVSMI LOG\s*=+/m.test(t)) return 'text';
  const header = t.split('\n', 1)[0] ?? '';
  if (/(^|,\s*)name(\s|,|$)/.test(header) && header.includes(',')) return 'csv';
  return undefined;
}

export function parseNvidiaSmi(text: string): NvidiaReport | undefined {
  switch (detectNvidiaFormat(text)) {
    case 'xml':
      return parseNvidiaSmiXml(text);
    case 'csv':
      return parseNvidiaSmiCsv(text);
    case 'text':
      return parseNvidiaSmiQueryText(text);
    default:
      return undefined;
  }
}

/** Normalises a PCI bus id for matching XML ids against CSV ids ('00000000:2D:00.0' vs '0000:2d:00.0'). */
function busKey(id: string | undefined): string | undefined {
  const m = /([0-9a-f]{2}):([0-9a-f]{2})\.([0-9a-f])$/i.exec(id ?? '');
  return m ? `${m[1]}:${m[2]}.${m[3]}`.toLowerCase() : undefined;
}

/**
 * Adds compute capabilities from a `--query-gpu=index,pci.bus_id,compute_cap --format=csv` answer to a report
 * that lacks them (the XML has no compute_cap field). Matches by bus id, else by position.
 */
export function mergeComputeCaps(report: NvidiaReport, csvText: string): NvidiaReport {
  const rows = parseQueryGpuCsv(csvText).filter((r) => value(r['compute_cap']) !== undefined);
  if (rows.length === 0) return report;
  const byBus = new Map(rows.map((r) => [busKey(r['pci.bus_id']), value(r['compute_cap'])] as const));
  const gpus = report.gpus.map((g, i) => {
    if (g.computeCap !== undefined) return g;
    const key = busKey(g.busId);
    const cap = (key !== undefined ? byBus.get(key) : undefined) ?? (rows.length === report.gpus.length ? value(rows[i]?.['compute_cap']) : undefined);
    return cap === undefined ? g : { ...g, computeCap: cap };
  });
  return { ...report, gpus };
}
