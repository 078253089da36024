/**
 * What each NVIDIA GPU family needs, by product name as nvidia-smi prints it. Minimum driver and CUDA are the
 * first release that supports the architecture (NVIDIA's CUDA release notes, "minimum required driver" table);
 * H100 follows the project's own requirement (driver >= 525.60, CUDA >= 12.0, kernel >= 5.15). The compute
 * capability is the fallback for outputs without a compute_cap field (the XML has none; drivers < 510 neither).
 * Order matters: the first pattern that matches wins, so specific names come before families.
 */

export interface GpuModelSpec {
  pattern: RegExp;
  family: string;
  computeCap: string;
  minDriver: string;
  minCuda: string;
  minKernel?: string;
}

const HOPPER = { family: 'Hopper', computeCap: '9.0', minDriver: '525.60', minCuda: '12.0', minKernel: '5.15' };
const BLACKWELL_DC = { family: 'Blackwell', computeCap: '10.0', minDriver: '570.26', minCuda: '12.8' };
const BLACKWELL_WS = { family: 'Blackwell', computeCap: '12.0', minDriver: '570.26', minCuda: '12.8' };
const ADA = { family: 'Ada Lovelace', computeCap: '8.9', minDriver: '520.61.05', minCuda: '11.8' };
const AMPERE_GA100 = { family: 'Ampere', computeCap: '8.0', minDriver: '450.36.06', minCuda: '11.0' };
const AMPERE_GA10X = { family: 'Ampere', computeCap: '8.6', minDriver: '455.23', minCuda: '11.1' };
const TURING = { family: 'Turing', computeCap: '7.5', minDriver: '410.48', minCuda: '10.0' };
const VOLTA = { family: 'Volta', computeCap: '7.0', minDriver: '384.81', minCuda: '9.0' };
const PASCAL_GP100 = { family: 'Pascal', computeCap: '6.0', minDriver: '375.26', minCuda: '8.0' };
const PASCAL = { family: 'Pascal', computeCap: '6.1', minDriver: '375.26', minCuda: '8.0' };
const MAXWELL = { family: 'Maxwell', computeCap: '5.2', minDriver: '346.46', minCuda: '7.0' };
const KEPLER = { family: 'Kepler', computeCap: '3.5', minDriver: '319.37', minCuda: '5.5' };

export const GPU_MODELS: readonly GpuModelSpec[] = [
  { pattern: /\b(GH200|H200|H100|H800|H20)\b/i, ...HOPPER },
  { pattern: /\b(GB200|B200|B100)\b/i, ...BLACKWELL_DC },
  { pattern: /\bRTX PRO \d+ Blackwell|\bRTX 50\d0\b/i, ...BLACKWELL_WS },
  { pattern: /\b(L40S?|L4|L20)\b|\bRTX 40\d0\b|\bRTX \d+(?: SFF)? Ada\b/i, ...ADA },
  { pattern: /\b(A100|A800|A30)\b/i, ...AMPERE_GA100 },
  { pattern: /\b(A10G?|A16|A2|A40)\b|\bRTX A\d+\b|\bRTX 30\d0\b/i, ...AMPERE_GA10X },
  { pattern: /\b(T4|TITAN RTX|Quadro RTX \d+)\b|\bRTX 20\d0\b|\bGTX 16\d0\b/i, ...TURING },
  { pattern: /\b(V100S?|TITAN V|Quadro GV100)\b/i, ...VOLTA },
  { pattern: /\b(P100|Quadro GP100)\b/i, ...PASCAL_GP100 },
  { pattern: /\bTITAN Xp\b|\bTITAN X \(Pascal\)|\b(P40|P4|P6)\b|\bQuadro P\d+\b|\bGTX 10\d0\b|\bGT 10\d0\b/i, ...PASCAL },
  { pattern: /\bGTX TITAN X\b|\b(M40|M60|M10|M6)\b|\bGTX 9\d0\b/i, ...MAXWELL },
  { pattern: /\b(K80)\b/i, ...KEPLER, computeCap: '3.7' },
  { pattern: /\b(K40|K20X?|GTX TITAN)\b/i, ...KEPLER },
];

export function gpuModelSpec(productName: string): GpuModelSpec | undefined {
  return GPU_MODELS.find((m) => m.pattern.test(productName));
}

/** PyTorch 2.x needs Volta or newer. */
export const MIN_COMPUTE_CAPABILITY = '7.0';

/** '7.0' -> 'sm_70', '12.0' -> 'sm_120'. */
export function smName(computeCap: string): string {
  const [major = '0', minor = '0'] = computeCap.split('.');
  return `sm_${major}${minor}`;
}

/**
 * Compares dotted numeric versions ('535.161.08' vs '525.60'; '5.15.0-105-generic' vs '5.15'): negative, 0 or
 * positive. Only the leading numeric components count; missing components are 0.
 */
export function compareVersions(a: string, b: string): number {
  const nums = (v: string) => (/^\d+(?:\.\d+)*/.exec(v.trim())?.[0] ?? '').split('.').filter(Boolean).map(Number);
  const x = nums(a);
  const y = nums(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** True when `v` starts with a number at all (so it can be compared). */
export function isVersion(v: string | undefined): v is string {
  return v !== undefined && /^\d+(\.\d+)*/.test(v.trim());
}
