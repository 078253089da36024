import type { ExecResult } from '../../state/types.js';
import { mergeComputeCaps, parseNvidiaSmi, type GpuInfo, type NvidiaReport } from '../parsers/nvidia-smi.js';
import { APPLICATION_XIDS, parseXidLog } from '../parsers/xid.js';
import type { CheckContext, CheckSpec, Evidence } from '../types.js';
import { commandFailed, failed, listSome, passed } from './evidence.js';
import { compareVersions, gpuModelSpec, isVersion, MIN_COMPUTE_CAPABILITY, smName, type GpuModelSpec } from './nvidia-models.js';

/**
 * nvidia: the GPUs the group ordered are there, each with the memory ordered, driven by a driver (and CUDA, and
 * kernel) new enough for the model, of a compute capability PyTorch 2.x can use, with no pending page retirement
 * or row remap, and no hardware Xid since boot.
 */

const ROLE = 'nvidia';
/** Memory is compared within 2 %: drivers report slightly different totals for the same board (81559 vs 81920 MiB on 80 GB parts). */
export const MEMORY_TOLERANCE = 0.02;

const COMPUTE_CAP_MARK = '@@rackseed compute_cap@@';
const KERNEL_LOG_OK = '@@rackseed kernel-log ok@@';

/**
 * One exec: the XML report, then the compute capabilities (a query field since driver 510; older drivers print an
 * error there, which only leaves that part empty and the model table answers instead).
 */
export const NVIDIA_SMI_COMMAND = [
  "command -v nvidia-smi >/dev/null 2>&1 || { echo 'nvidia-smi: command not found' >&2; exit 127; }",
  'nvidia-smi -q -x || exit $?',
  `echo '${COMPUTE_CAP_MARK}'`,
  'nvidia-smi --query-gpu=index,pci.bus_id,compute_cap --format=csv 2>/dev/null',
  'exit 0',
].join('\n');

/** `Xid (PCI:0000:3b:00): 13,`: the application-caused codes, which must not crowd the hardware ones out of the tail. */
const APPLICATION_XID_PATTERN = `Xid \\([^)]*\\): (${[...APPLICATION_XIDS].join('|')}),`;

/**
 * The kernel log's Xid lines, then a marker proving the log was readable (no marker = we saw nothing, not "no Xid").
 * Hardware and application Xids are kept apart, each with its own limit: a flood of application Xid 13 after one
 * Xid 79 (GPU fallen off the bus) must not push the 79 out of a shared tail.
 */
export const XID_COMMAND = [
  'if log=$(dmesg 2>&1); then',
  "  xids=$(printf '%s\\n' \"$log\" | grep -F 'NVRM: Xid') || true",
  `  printf '%s\\n' "$xids" | grep -vE '${APPLICATION_XID_PATTERN}' | tail -n 500`,
  `  printf '%s\\n' "$xids" | grep -E '${APPLICATION_XID_PATTERN}' | tail -n 100`,
  `  echo '${KERNEL_LOG_OK}'`,
  "else printf '%s\\n' \"$log\" >&2; exit 1; fi",
].join('\n');

/** Splits the collection output into the report and the compute_cap CSV. */
export function parseNvidiaCollection(stdout: string): NvidiaReport | undefined {
  const at = stdout.indexOf(COMPUTE_CAP_MARK);
  const main = at >= 0 ? stdout.slice(0, at) : stdout;
  const report = parseNvidiaSmi(main);
  if (!report || at < 0) return report;
  return mergeComputeCaps(report, stdout.slice(at + COMPUTE_CAP_MARK.length));
}

function distinct(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/** '8x NVIDIA H100 80GB HBM3' or '1x A, 1x B'. */
function describeGpus(gpus: readonly GpuInfo[]): string {
  if (gpus.length === 0) return 'no GPU';
  const counts = new Map<string, number>();
  for (const g of gpus) counts.set(g.name, (counts.get(g.name) ?? 0) + 1);
  return [...counts].map(([name, n]) => `${n}x ${name}`).join(', ');
}

function gpuLabel(g: GpuInfo): string {
  return `GPU ${g.index}${g.busId ? ` (${g.busId})` : ''}`;
}

function countEvidence(report: NvidiaReport, ctx: CheckContext): Evidence {
  const exp = ctx.hardware.gpu;
  const seen = String(report.gpus.length);
  if (!exp) {
    return report.gpus.length >= 1
      ? passed(ROLE, 'nvidia.gpu_count', '>= 1', seen)
      : failed(ROLE, 'nvidia.gpu_count', '>= 1', seen, 'nvidia-smi lists no GPU');
  }
  return report.gpus.length === exp.count
    ? passed(ROLE, 'nvidia.gpu_count', String(exp.count), seen)
    : failed(ROLE, 'nvidia.gpu_count', String(exp.count), seen, `nvidia-smi lists ${report.gpus.length} GPU(s), the group expects ${exp.count}`);
}

/**
 * Whether nvidia-smi's product name names `model` as a whole token: "NVIDIA H100 80GB HBM3" has H100, but
 * "NVIDIA L40S" has no L40 and "NVIDIA A100-SXM4-80GB" no A10 (a substring match passed both).
 */
export function nameHasModel(name: string, model: string): boolean {
  const escaped = model.trim().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^a-z0-9])${escaped}($|[^a-z0-9])`, 'i').test(name);
}

function modelEvidence(report: NvidiaReport, ctx: CheckContext): Evidence[] {
  const exp = ctx.hardware.gpu;
  if (!exp || report.gpus.length === 0) return [];
  const wrong = report.gpus.filter((g) => !nameHasModel(g.name, exp.model));
  const seen = describeGpus(report.gpus);
  return [
    wrong.length === 0
      ? passed(ROLE, 'nvidia.gpu_model', exp.model, seen)
      : failed(ROLE, 'nvidia.gpu_model', exp.model, seen, `${listSome(wrong.map((g) => `${gpuLabel(g)} is ${g.name}`))}, not ${exp.model}`),
  ];
}

/** The strictest spec among the models present (a mixed node must satisfy every model). */
function strictest(specs: readonly GpuModelSpec[], pick: (s: GpuModelSpec) => string | undefined): string | undefined {
  let best: string | undefined;
  for (const s of specs) {
    const v = pick(s);
    if (v !== undefined && (best === undefined || compareVersions(v, best) > 0)) best = v;
  }
  return best;
}

function minimumEvidence(check: string, what: string, min: string | undefined, seen: string | undefined, models: string): Evidence {
  if (min === undefined) return passed(ROLE, check, '-', seen ?? 'not reported', `no minimum ${what} known for ${models}`);
  const expected = `>= ${min}`;
  if (!isVersion(seen)) return failed(ROLE, check, expected, seen ?? 'not reported', `the ${what} is not reported, so it cannot be checked against ${min} for ${models}`);
  return compareVersions(seen, min) >= 0
    ? passed(ROLE, check, expected, seen)
    : failed(ROLE, check, expected, seen, `${what} ${seen} is older than ${min}, the minimum for ${models}`);
}

function versionEvidence(report: NvidiaReport, ctx: CheckContext): Evidence[] {
  const names = distinct(report.gpus.map((g) => g.name));
  const specs = names.map(gpuModelSpec).filter((s): s is GpuModelSpec => s !== undefined);
  const models = names.join(', ') || 'no GPU';
  return [
    minimumEvidence('nvidia.driver', 'driver', strictest(specs, (s) => s.minDriver), report.driverVersion, models),
    minimumEvidence('nvidia.cuda', 'CUDA version', strictest(specs, (s) => s.minCuda), report.cudaVersion, models),
    minimumEvidence('nvidia.kernel', 'kernel', strictest(specs, (s) => s.minKernel), ctx.facts.kernel || undefined, models),
  ];
}

/** The driver version the group pins (data nvidia.driver, what states/nvidia installs), if any. */
export function pinnedDriver(data: Record<string, unknown>): string | undefined {
  const nv = data['nvidia'];
  const pin = nv && typeof nv === 'object' ? (nv as Record<string, unknown>)['driver'] : undefined;
  return typeof pin === 'string' || typeof pin === 'number' ? String(pin) : undefined;
}

/** A pinned driver must be exactly the one running: a node ahead of or behind its group is drift. */
function pinEvidence(report: NvidiaReport, ctx: CheckContext): Evidence[] {
  const pin = pinnedDriver(ctx.data);
  if (pin === undefined) return [];
  const seen = report.driverVersion ?? 'not reported';
  return [
    seen === pin
      ? passed(ROLE, 'nvidia.driver_pin', pin, seen)
      : failed(ROLE, 'nvidia.driver_pin', pin, seen, `the running driver is ${seen}, the group pins ${pin} (data nvidia.driver); a reboot may be pending after a driver change`),
  ];
}

function computeCapabilityEvidence(report: NvidiaReport): Evidence[] {
  if (report.gpus.length === 0) return [];
  const min = MIN_COMPUTE_CAPABILITY;
  const expected = `>= ${min} (${smName(min)})`;
  const problems: string[] = [];
  const seen: string[] = [];
  for (const g of report.gpus) {
    const cap = g.computeCap ?? gpuModelSpec(g.name)?.computeCap;
    if (cap === undefined) {
      problems.push(`${gpuLabel(g)} ${g.name}: compute capability unknown (no compute_cap in the output and the model is not in the table)`);
      seen.push('unknown');
      continue;
    }
    seen.push(smName(cap));
    if (compareVersions(cap, min) < 0) problems.push(`${g.name} is ${smName(cap)} (compute capability ${cap}), below the ${smName(min)} PyTorch 2.x needs`);
  }
  const seenText = distinct(seen).join(', ');
  return [
    problems.length === 0
      ? passed(ROLE, 'nvidia.compute_capability', expected, seenText)
      : failed(ROLE, 'nvidia.compute_capability', expected, seenText, listSome(distinct(problems), 3)),
  ];
}

function memoryEvidence(report: NvidiaReport, ctx: CheckContext): Evidence[] {
  const exp = ctx.hardware.gpu;
  if (!exp || report.gpus.length === 0) return [];
  const expected = `${exp.memoryMiB} MiB per GPU (±${MEMORY_TOLERANCE * 100}%)`;
  const off = report.gpus.filter((g) => g.memoryMiB === undefined || Math.abs(g.memoryMiB - exp.memoryMiB) > exp.memoryMiB * MEMORY_TOLERANCE);
  const seen = distinct(report.gpus.map((g) => (g.memoryMiB === undefined ? 'not reported' : `${g.memoryMiB} MiB`))).join(', ');
  return [
    off.length === 0
      ? passed(ROLE, 'nvidia.memory', expected, seen)
      : failed(ROLE, 'nvidia.memory', expected, seen, listSome(off.map((g) => `${gpuLabel(g)} ${g.name} has ${g.memoryMiB === undefined ? 'no reported' : `${g.memoryMiB} MiB`} memory, the group ordered ${exp.memoryMiB} MiB`), 3)),
  ];
}

function memoryErrorEvidence(report: NvidiaReport): Evidence[] {
  if (report.gpus.length === 0) return [];
  const problems: string[] = [];
  for (const g of report.gpus) {
    if (g.retiredPagesPending) problems.push(`${gpuLabel(g)}: page retirement pending`);
    if (g.remappedRowsPending) problems.push(`${gpuLabel(g)}: row remap pending (needs a GPU reset)`);
    if (g.remappedRowsFailure) problems.push(`${gpuLabel(g)}: row remapping failed`);
  }
  const expected = 'no pending retired pages or row remaps';
  if (problems.length > 0) return [failed(ROLE, 'nvidia.memory_errors', expected, `${problems.length} pending`, listSome(problems, 4))];
  // N/A for both (a model without ECC page retirement or row remapping, or a mode that hides them): nothing pending
  // was seen, which the evidence must not word as "none pending".
  const unreported = report.gpus.filter((g) => g.retiredPagesPending === undefined && g.remappedRowsPending === undefined && g.remappedRowsFailure === undefined);
  if (unreported.length === 0) return [passed(ROLE, 'nvidia.memory_errors', expected, 'none pending')];
  const why = `nvidia-smi reports neither page retirement nor row remapping (N/A) for ${listSome(unreported.map(gpuLabel), 4)}: nothing pending could be seen there`;
  const seen = unreported.length === report.gpus.length ? 'not reported (N/A)' : `none pending; ${unreported.length} of ${report.gpus.length} GPUs not reported (N/A)`;
  return [passed(ROLE, 'nvidia.memory_errors', expected, seen, why)];
}

/** PURE: the whole nvidia-smi evaluation, from the collection command's output. */
export function evaluateNvidiaSmi(output: ExecResult, ctx: CheckContext): Evidence[] {
  const expected = ctx.hardware.gpu ? `${ctx.hardware.gpu.count}x ${ctx.hardware.gpu.model}` : 'GPUs visible to nvidia-smi';
  if (output.code !== 0) return [commandFailed(ROLE, 'nvidia.smi', expected, 'nvidia-smi', output)];
  const report = parseNvidiaCollection(output.stdout);
  if (!report) return [failed(ROLE, 'nvidia.smi', expected, 'unreadable output', `nvidia-smi printed something that is not its XML, CSV or -q report: ${output.stdout.trim().slice(0, 200)}`)];
  return [
    countEvidence(report, ctx),
    ...modelEvidence(report, ctx),
    ...versionEvidence(report, ctx),
    ...pinEvidence(report, ctx),
    ...computeCapabilityEvidence(report),
    ...memoryEvidence(report, ctx),
    ...memoryErrorEvidence(report),
  ];
}

/** PURE: Xid events in the kernel log since boot; application-caused Xids are listed but do not fail. */
export function evaluateXid(output: ExecResult): Evidence[] {
  const expected = 'no hardware Xid since boot';
  if (output.code !== 0 || !output.stdout.includes(KERNEL_LOG_OK)) {
    return [commandFailed(ROLE, 'nvidia.xid', expected, 'reading the kernel log (dmesg)', output.code === 0 ? { ...output, code: 1 } : output)];
  }
  const { events, unrecognised } = parseXidLog(output.stdout);
  // An Xid line in a shape this parser does not know is not "no Xid": it could be a GPU off the bus.
  if (unrecognised.length > 0) {
    return [failed(ROLE, 'nvidia.xid', expected, `${unrecognised.length} Xid line(s) in an unknown format`, `cannot classify the kernel log's Xid line: ${unrecognised[0]!.slice(0, 160)}`)];
  }
  const hardware = events.filter((e) => !APPLICATION_XIDS.has(e.xid));
  const summarise = (list: typeof events) => {
    const counts = new Map<string, number>();
    for (const e of list) counts.set(`Xid ${e.xid} on ${e.pci}`, (counts.get(`Xid ${e.xid} on ${e.pci}`) ?? 0) + 1);
    return [...counts].map(([k, n]) => (n > 1 ? `${k} (x${n})` : k));
  };
  if (hardware.length > 0) {
    const first = hardware[0]!;
    return [failed(ROLE, 'nvidia.xid', expected, listSome(summarise(hardware), 3), `${hardware.length} hardware Xid event(s) since boot, first: Xid ${first.xid} on ${first.pci}: ${first.message.slice(0, 160)}`)];
  }
  return [passed(ROLE, 'nvidia.xid', expected, events.length === 0 ? 'none' : `${listSome(summarise(events), 3)} (application Xids only)`)];
}

const smi: CheckSpec = { id: 'nvidia.smi', role: ROLE, command: () => NVIDIA_SMI_COMMAND, timeoutMs: 60_000, evaluate: evaluateNvidiaSmi };
const xid: CheckSpec = { id: 'nvidia.xid', role: ROLE, command: () => XID_COMMAND, evaluate: (output) => evaluateXid(output) };

export const NVIDIA_CHECKS: readonly CheckSpec[] = [smi, xid];

/** A GPU role without a declared expectation cannot verify what was ordered: say so instead of passing. */
export function nvidiaStaticEvidence(ctx: CheckContext): Evidence[] {
  if (ctx.hardware.gpu) return [];
  return [failed(ROLE, 'nvidia.expectation', 'hardware.gpu declared for the group', 'none declared', `group "${ctx.group}" has the nvidia role but declares no hardware.gpu {model, count, memory_mib}: readiness cannot check what was ordered`)];
}
